"""sseclient-py over requests as a Herald subscriber, for the client matrix
(../matrix.test.mjs).

Usage: HERALD_TOKEN=… python sseclient_py_client.py URL

Prints one JSON line per event, {"type", "data", "id"}. sseclient-py only
parses a response it is given: this loop opens it the way its README shows
(requests.get(stream=True)) and reconnects with the last id.
"""

import json
import os
import sys
import time

import requests
import sseclient


def main(url):
    last_event_id = None
    delay = 0.0
    while True:
        time.sleep(delay)
        headers = {
            "Accept": "text/event-stream",
            "Authorization": f"Bearer {os.environ['HERALD_TOKEN']}",
        }
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            # (connect, read) timeouts: the read timeout must outlast the
            # hub's heartbeat interval.
            response = requests.get(url, stream=True, headers=headers, timeout=(5, 30))
            response.raise_for_status()
            print("open", file=sys.stderr, flush=True)
            for event in sseclient.SSEClient(response).events():
                if event.id is not None:
                    last_event_id = event.id
                if event.retry and event.retry.isdigit():
                    delay = int(event.retry) / 1000
                emit(event.event, event.data, last_event_id)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,  # a cut chunked body
        ) as e:
            print(f"error: {e!r}", file=sys.stderr, flush=True)


def emit(type_, data, id_):
    print(json.dumps({"type": type_, "data": data, "id": id_}), flush=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except KeyboardInterrupt:
        pass
