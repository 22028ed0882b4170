"""textpipe: a text pipeline whose stages are pluggy hooks, served by Python plugins and
sandboxed WebAssembly components alike."""
