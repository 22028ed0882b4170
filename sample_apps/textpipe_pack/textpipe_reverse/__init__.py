"""textpipe-reverse: a component pack for the textpipe sample app.

The WebAssembly component ``reverse`` is package data (``reverse/plugin.toml`` and
``reverse/reverse.wasm``), declared in the entry-point group ``textpipe.components``.
textpipe finds it through the distribution's metadata and never imports this package for
it. The ordinary Python plugin in :mod:`textpipe_reverse.question` is declared in the
group ``textpipe`` and loaded by ``pm.load_setuptools_entrypoints``, as pluggy does.
"""
