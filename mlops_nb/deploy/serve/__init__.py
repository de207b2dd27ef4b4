"""The scoring server (``mlops-nb serve``): MLflow's protocol on Starlette and uvicorn, a verified
version held in memory and switched when ``current`` moves, and per-minute monitoring.

``protocol``  request bodies -> DataFrames, predictions -> ``{"predictions": [...]}``;
``served``    the verified version in use and the switch to a new one;
``monitor``   the per-minute buffer, its summary (latency, predictions, input drift) and flush;
``batch``     concurrent small requests sharing one model call;
``app``       the ASGI app (``/invocations`` by hand, the rest Starlette), predicting through the scorer.
"""
