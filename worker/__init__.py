"""The worker process: claims job rows, runs them through the image engine, writes results.

It imports only Luster's core (never Reflex), so it runs on machines without the web app.
"""
