"""A user-style package, as a team would keep its own models: nnship imports it by name
(`my_pkg.models:small_cnn`) with the folder holding it on the Python path (`nnship build`
puts the recipe's folder there; on the command line run from `examples/` or set PYTHONPATH)."""
