// jco guest for tests/test_raw_params.py: hands its argument to the host.
import { fetch, tags } from "test:rawrecords/host@1.0.0";

export const relay = {
  relay(req) {
    return fetch(req);
  },
  tagsBack() {
    return tags(["naïve", "ïve", "✓"]);
  },
};
