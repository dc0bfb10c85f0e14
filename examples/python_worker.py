#!/usr/bin/python3
"""A messplus model worker in Python, written from docs/protocol.md alone.

It connects a DEALER socket to dispatch's `workers` endpoint, announces itself with
`worker_ready`, answers every `model_call` with a `model_reply`, heartbeats while idle and
reconnects (Paranoid Pirate) when dispatch goes silent.

Answers come from captured data when --data names a CSV in the ../shared/data format (the
recorded cost of this model, and its recorded satisfaction as metadata
"recorded_satisfaction"); without --data it echoes the text with cost 1.

    /usr/bin/python3 examples/python_worker.py --endpoint ipc:///tmp/messplus/workers \\
        --model llama-3.2-1b-instruct --data ../shared/data/messplus_llama3/<file>.csv

Needs python3-zmq and python3-msgpack (Debian packages). On SIGINT/SIGTERM it stops and
prints "calls=<n>" (the calls it answered) on stdout.
"""

import argparse
import csv
import signal
import sys
import time

import msgpack
import zmq

PROTOCOL_VERSION = 1


def pack(message_type, **fields):
    """One frame: a msgpack map with "v", "type" and the fields."""
    body = {"v": PROTOCOL_VERSION, "type": message_type}
    body.update(fields)
    return msgpack.packb(body, use_bin_type=True)


def unpack(frame):
    """The message map, or None when the frame is not a protocol message we can read."""
    try:
        message = msgpack.unpackb(frame, raw=False)
    except Exception:  # noqa: BLE001 - a bad frame is skipped, never fatal
        return None
    if not isinstance(message, dict) or message.get("v") != PROTOCOL_VERSION:
        return None
    return message


class CapturedAnswers:
    """Recorded cost and satisfaction of one model, by request id and by prompt text."""

    def __init__(self, path, model):
        csv.field_size_limit(10**9)
        self.by_id, self.by_prompt = {}, {}
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cost_column = None
            for kind in ("energy_j", "cost_usd", "latency_s"):
                if f"{kind}__{model}" in reader.fieldnames:
                    cost_column = f"{kind}__{model}"
                    break
            if cost_column is None or f"score__{model}" not in reader.fieldnames:
                raise SystemExit(f"{path} has no columns for model {model}")
            latency_column = f"latency_s__{model}"
            for row in reader:
                latency = row.get(latency_column) or ""
                record = (float(row[cost_column]), row[f"score__{model}"],
                          float(latency) if latency else None, row["id"])
                self.by_id.setdefault(row["id"], record)
                self.by_prompt.setdefault(row["prompt"], record)

    def find(self, request_id, text):
        return self.by_id.get(request_id) or self.by_prompt.get(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="dispatch's workers endpoint")
    parser.add_argument("--model", required=True, help="the model this worker serves")
    parser.add_argument("--name", default="python-worker", help="worker name for logs")
    parser.add_argument("--data", default="", help="CSV with recorded answers (else: echo)")
    parser.add_argument("--heartbeat-ms", type=int, default=1000)
    parser.add_argument("--liveness", type=int, default=3)
    args = parser.parse_args()

    answers = CapturedAnswers(args.data, args.model) if args.data else None
    stop = {"now": False}

    def on_signal(_signo, _frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    context = zmq.Context()
    calls = 0
    backoff = 0.25

    def connect():
        s = context.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(args.endpoint)
        s.send(pack("worker_ready", model=args.model, worker=args.name))
        return s

    sock = connect()
    liveness = args.liveness
    next_heartbeat = time.monotonic() + args.heartbeat_ms / 1000.0
    while not stop["now"]:
        try:
            ready = sock.poll(args.heartbeat_ms)
        except zmq.ZMQError:  # interrupted by a signal
            continue
        if ready:
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                liveness, backoff = args.liveness, 0.25  # any message is a sign of life
                message = unpack(frames[-1]) if len(frames) == 1 else None
                if message is None or message.get("type") != "model_call":
                    continue  # heartbeats, errors, anything unreadable
                reply = {"call_id": message["call_id"], "request_id": message.get("request_id", ""),
                         "model": args.model}
                if message.get("model") != args.model:
                    reply["error"] = f"this worker serves {args.model}"
                elif answers is None:
                    reply.update(answer=message.get("text", ""), cost=1.0)
                else:
                    record = answers.find(message.get("request_id", ""), message.get("text", ""))
                    if record is None:
                        reply["error"] = "no recorded answer for this request"
                    else:
                        cost, satisfaction, latency, row_id = record
                        reply.update(answer=f"[recorded answer of {args.model} to {row_id}]",
                                     cost=cost,
                                     metadata={"recorded_satisfaction": satisfaction,
                                               "row": row_id, "worker": "python"})
                        if latency is not None:
                            reply["latency_s"] = latency
                calls += 1
                sock.send(pack("model_reply", **reply))
        else:
            liveness -= 1
            if liveness <= 0:
                # Paranoid Pirate: dispatch is gone; reconnect after a growing pause.
                print(f"{args.name}: dispatch silent; reconnecting in {backoff:.2f} s",
                      file=sys.stderr)
                sock.close()
                time.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                sock = connect()
                liveness = args.liveness
        if time.monotonic() >= next_heartbeat:
            sock.send(pack("worker_heartbeat", model=args.model))
            next_heartbeat = time.monotonic() + args.heartbeat_ms / 1000.0

    sock.close()
    context.term()
    print(f"calls={calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
