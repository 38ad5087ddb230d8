from dnsprobe.cli import entrypoint

entrypoint()
