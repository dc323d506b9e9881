"""httpx-sse as a Herald subscriber, for the client matrix (../matrix.test.mjs).

Usage: HERALD_TOKEN=… python httpx_sse_client.py URL

Prints one JSON line per event, {"type", "data", "id"}. httpx-sse parses
but does not reconnect: this loop reconnects the way its README shows
(resend the last id as Last-Event-ID, wait the server's retry: first).
"""

import json
import os
import sys
import time

import httpx
from httpx_sse import connect_sse


def main(url):
    last_event_id = ""
    reconnection_delay = 0.0
    # httpx's read timeout (5 s by default) must outlast the hub's
    # heartbeat interval, or a quiet stream times out.
    with httpx.Client(timeout=httpx.Timeout(5.0, read=30.0)) as client:
        while True:
            time.sleep(reconnection_delay)
            headers = {"Authorization": f"Bearer {os.environ['HERALD_TOKEN']}"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                with connect_sse(client, "GET", url, headers=headers) as source:
                    source.response.raise_for_status()
                    print("open", file=sys.stderr, flush=True)
                    for sse in source.iter_sse():
                        last_event_id = sse.id
                        if sse.retry is not None:
                            reconnection_delay = sse.retry / 1000
                        emit(sse.event, sse.data, sse.id)
            except httpx.TransportError as e:
                # A cut chunked body is httpx.RemoteProtocolError.
                print(f"error: {e!r}", file=sys.stderr, flush=True)


def emit(type_, data, id_):
    print(json.dumps({"type": type_, "data": data, "id": id_}), flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except KeyboardInterrupt:
        pass
