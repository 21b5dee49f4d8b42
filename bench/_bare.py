"""A bare FastAPI app, served as ``credflow serve`` serves credflow (uvicorn, one worker, the same log level), to
measure in the same run what the framework alone answers: the yardstick of credflow's own cost per request.

    python bench/_bare.py --port N
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _server import free_port, stop

PATH = "/bare"


def app() -> object:
    from fastapi import FastAPI

    bare = FastAPI()

    @bare.get(PATH)
    async def endpoint() -> dict[str, str]:
        return {"status": "ok"}

    return bare


@contextmanager
def bare_server() -> Iterator[str]:
    """The bare app on a free loopback port; yields its URL once it answers, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + PATH, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare app did not start")
            time.sleep(0.1)
        yield url
    finally:
        stop(proc)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.Server(uvicorn.Config(app(), host="127.0.0.1", port=port, log_level="warning")).run()  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
