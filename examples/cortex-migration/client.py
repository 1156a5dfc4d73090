"""Calls the `sentiment` API the way a Cortex user's client did, with
`requests`: JSON, text, bytes and form bodies (fields and a file upload), a
query parameter, a header.

usage: python client.py [URL]   (default http://127.0.0.1:7000/sentiment)
"""

import sys

import requests

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7000/sentiment"

r = requests.post(url, json={"text": "What a great, happy day"}, headers={"X-User": "ada"})
r.raise_for_status()
print("json:", r.json())
assert r.json()["label"] == "positive" and r.json()["user"] == "ada", r.text

r = requests.post(url, params={"debug": "true"}, json={"text": "awful"})
print("json, debug:", r.json())
assert r.json()["label"] == "negative" and r.json()["words"] == ["awful"], r.text

r = requests.post(url, data="I love it", headers={"Content-Type": "text/plain"})
print("text:", r.headers["content-type"], repr(r.text))
assert r.text == "positive" and r.headers["content-type"].startswith("text/plain"), r.text

blob = bytes(range(256)) * 4
r = requests.post(url, data=blob, headers={"Content-Type": "application/octet-stream"})
print("bytes:", r.json())
assert r.json()["bytes"] == 1024, r.text

r = requests.post(url, data={"text": "a happy form"})
print("form:", r.json())
assert r.json()["label"] == "positive", r.text

r = requests.post(url, files={"text": ("review.txt", b"terrible, just awful")})
print("file upload:", r.json())
assert r.json()["label"] == "negative" and r.json()["score"] == -2, r.text

r = requests.post(url, json={"words": []})
print("chosen status:", r.status_code, r.json())
assert r.status_code == 422, r.status_code

r = requests.post(url.rsplit("/", 1)[0] + "/no-such-api", json={})
print("unknown API:", r.status_code, r.json())
assert r.status_code == 404 and "no-such-api" in r.json()["error"], r.text
print("ok")
