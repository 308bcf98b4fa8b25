"""`advisor serve`: the base model and every trained adapter of a task behind one OpenAI-compatible endpoint.

catalog.py says what is served and under which names; pool.py holds the models (one shared base with
its LoRA adapters, and the models that need their own weights); execution.py runs one batch of work on
them; batcher.py gathers concurrent requests into those batches; requests.py turns an OpenAI request
into work and the results into OpenAI responses; schemas.py and errors.py are the wire format;
app.py is the FastAPI app and launch.py starts it. fastapi and uvicorn are imported only here, and
only when the command runs (`pip install 'ladder-advisor[serve]'`).
"""
