"""The peer of `benchmarks/load.py`: the same uvicorn, the same two workers, no Django.

Answers every request with a fixed JSON body the size of a ten-item recommendations response, so
that `load.py` can show, in the same run, what this machine's HTTP stack alone does at the target
rate: the part of the latency that no change to the project's code can remove."""

import json

BODY = json.dumps(
    {
        "items": [
            {
                "external_id": f"att-{i:04d}",
                "display_name": "Ada Lovelace",
                "headline": "Engineer",
                "company": "Analytical Engines",
                "score": 0.5,
                "here_now": False,
                "reasons": [{"kind": "same_time", "text": "you both spent 40 min in 'Main hall'", "weight": 0.5}],
            }
            for i in range(10)
        ],
        "source": "local",
        "model_version": 1,
        "phase": "live",
        "cached": True,
        "empty_reason": "",
        "empty_code": "",
    }
).encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
