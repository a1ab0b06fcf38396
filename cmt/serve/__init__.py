"""The CMT inference service ("cloud CMT"): FastAPI around cmt.serve.engine.Engine."""

from cmt.serve.app import create_app

__all__ = ["create_app"]
