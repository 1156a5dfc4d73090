# A Cortex 0.31 PythonPredictor, unchanged: parameters by name, the payload
# typed by the request's Content-Type, query parameters and headers, and
# post_predict after the response has gone out.
import hashlib
import json
import os


class Reply:
    """A response with a status of the predictor's choosing: what
    starlette.responses.Response carries (status_code, body, media_type,
    headers). With starlette installed, its own Response works the same."""

    def __init__(self, content, status_code, media_type="application/json"):
        self.body = json.dumps(content).encode()
        self.status_code = status_code
        self.media_type = media_type
        self.headers = {}


class PythonPredictor:
    def __init__(self, config):
        self.positive = set(config["positive"])
        self.negative = set(config["negative"])
        self.greeting = os.environ.get("GREETING", "")
        self.served = 0

    def score(self, text):
        words = [w.strip(".,!?").lower() for w in text.split()]
        return sum(w in self.positive for w in words) - sum(w in self.negative for w in words)

    def predict(self, payload, query_params, headers):
        # application/octet-stream (or any other type): the raw bytes.
        if isinstance(payload, bytes):
            return {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        # text/plain: a str; the answer is a str too (text/plain).
        if isinstance(payload, str):
            return "positive" if self.score(payload) > 0 else "not positive"
        # application/json: the parsed document; a form (urlencoded or
        # multipart): a mapping of field to str, or to an uploaded file.
        if not isinstance(payload, dict) or "text" not in payload:
            return Reply({"error": 'send {"text": "..."}'}, 422)
        text = payload["text"]
        if hasattr(text, "file"):
            text = text.file.read().decode()
        score = self.score(text)
        answer = {
            "label": "positive" if score > 0 else "negative" if score < 0 else "neutral",
            "score": score,
            "user": headers.get("x-user"),
            "greeting": self.greeting,
        }
        if query_params.get("debug") == "true":
            answer["words"] = text.split()
        return answer

    def post_predict(self, response, payload):
        # Runs after the client has its answer: count, log, store.
        self.served += 1
        print(f"post_predict: served {self.served}, answered {response!r}", flush=True)
