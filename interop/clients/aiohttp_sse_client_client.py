"""aiohttp-sse-client as a Herald subscriber, for the client matrix
(../matrix.test.mjs).

Usage: HERALD_TOKEN=… python aiohttp_sse_client_client.py URL

Prints one JSON line per event, {"type", "data", "id"}.

aiohttp-sse-client reconnects by itself when a body ends cleanly, but when
a chunked body is cut off mid-stream (a dropped connection) aiohttp raises
ClientPayloadError out of the `async for` instead. The workaround: catch it
and open a new EventSource with the last id as Last-Event-ID.
"""

import asyncio
import json
import os
import sys
from datetime import timedelta

import aiohttp
from aiohttp_sse_client import client as sse_client


async def main(url):
    last_event_id = ""
    while True:
        headers = {"Authorization": f"Bearer {os.environ['HERALD_TOKEN']}"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with sse_client.EventSource(
                url,
                headers=headers,
                reconnection_time=timedelta(milliseconds=200),
                # aiohttp's default total timeout (5 minutes) would end any
                # longer stream; keep a read timeout above the heartbeat.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=30),
                on_open=lambda: print("open", file=sys.stderr, flush=True),
            ) as source:
                async for event in source:
                    last_event_id = event.last_event_id
                    emit(event.type or "message", event.data, event.last_event_id)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            # Cut off (the library's bug: it raises instead of
            # reconnecting), or the hub is restarting. An HTTP error status
            # raises ConnectionError, which ends this program.
            print(f"error: {e!r}", file=sys.stderr, flush=True)
        await asyncio.sleep(0.2)


def emit(type_, data, id_):
    print(json.dumps({"type": type_, "data": data, "id": id_}), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
