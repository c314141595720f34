"""A small typed client for the Toxiproxy 2.x HTTP API (ours or a real toxiproxy-server).

toxiproxy-python 0.1.1 has no toxic update and swallows 500s; this client raises ProxyError on every
error status and sends integers only (a real server rejects 100.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from harness.errors import ProxyError

__all__ = ["parse_byte_counts", "ProxyInfo", "ToxiproxyClient"]


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy as the API reports it."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[dict[str, Any]]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProxyInfo:
        toxics = list(data.get("toxics") or [])
        return cls(data["name"], data["listen"], data["upstream"], bool(data["enabled"]), toxics)

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class ToxiproxyClient:
    """Blocking client; safe under gevent (httpx uses plain sockets)."""

    def __init__(self, url: str = "http://127.0.0.1:8474", timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers={"User-Agent": "delivery-harness"})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text.strip()
            raise ProxyError(response.status_code, message)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def byte_counts(self, proxy: str) -> dict[str, tuple[int, int]] | None:
        """Per direction (received, sent) bytes through one proxy since it was created, from ``/metrics``
        (Prometheus text, as Toxiproxy serves with ``-proxy-metrics``); None when the server has no metrics."""
        try:
            response = self._http.get("/metrics")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return parse_byte_counts(response.text).get(proxy)

    def version(self) -> str:
        body = self._call("GET", "/version")
        return str(body["version"]) if isinstance(body, dict) else str(body).strip()

    def proxies(self) -> dict[str, ProxyInfo]:
        return {name: ProxyInfo.from_json(p) for name, p in self._call("GET", "/proxies").items()}

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> ProxyInfo:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyInfo.from_json(self._call("POST", "/proxies", body))

    def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._call("GET", f"/proxies/{name}"))

    def update_proxy(self, name: str, **fields: Any) -> ProxyInfo:
        return ProxyInfo.from_json(self._call("POST", f"/proxies/{name}", fields))

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", name: str | None = None,
                  toxicity: float = 1.0, attributes: dict[str, int] | None = None) -> dict[str, Any]:
        body = {"name": name or f"{type}_{stream}", "type": type, "stream": stream, "toxicity": toxicity,
                "attributes": attributes or {}}
        result: dict[str, Any] = self._call("POST", f"/proxies/{proxy}/toxics", body)
        return result

    def update_toxic(self, proxy: str, name: str, *, attributes: dict[str, int] | None = None,
                     toxicity: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"attributes": attributes or {}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        result: dict[str, Any] = self._call("PATCH", f"/proxies/{proxy}/toxics/{name}", body)
        return result

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        self._call("POST", "/reset")


_METRIC = re.compile(r'^toxiproxy_proxy_(received|sent)_bytes_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+]+)\s*$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_byte_counts(text: str) -> dict[str, dict[str, tuple[int, int]]]:
    """proxy → direction → (received, sent) bytes, from Toxiproxy's Prometheus metrics text."""
    found: dict[str, dict[str, list[int]]] = {}
    for line in text.splitlines():
        match = _METRIC.match(line.strip())
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        proxy, direction = labels.get("proxy"), labels.get("direction")
        if proxy is None or direction is None:
            continue
        pair = found.setdefault(proxy, {}).setdefault(direction, [0, 0])
        pair[0 if match[1] == "received" else 1] = int(float(match["value"]))
    return {p: {d: (v[0], v[1]) for d, v in dirs.items()} for p, dirs in found.items()}
