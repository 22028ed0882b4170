export const ops = {
  echo(data) {
    return data;
  },
  invert(data) {
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = ~data[i] & 0xff;
    return out;
  },
};
