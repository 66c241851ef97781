"""HTTP: the FastAPI app, its schemas, the Python client and the `hpo` CLI."""
