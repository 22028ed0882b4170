// jco guest for tests/test_raw_imports.py: hands its argument to the host.
import { give, giveBlob, take, takeText } from "test:rawimports/host@1.0.0";

export const relay = {
  send(data) {
    return take(data);
  },
  sendText(text) {
    return takeText(text);
  },
  giveBack(n) {
    return take(give(n));
  },
  giveBlobBack(n) {
    const blob = giveBlob(n);
    return takeText(blob.name) + take(blob.data);
  },
};
