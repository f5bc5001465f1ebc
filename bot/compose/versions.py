"""Which version of a template wrote a mail: a short hash of its source and of every template it
includes, e.g. "ack_rights.ja@3f2a9c1". Kept with each queued mail, so the evidence pack can say
which text the bot sent, whatever the templates directory holds later."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import jinja2
from jinja2 import meta

VERSION_CHARS = 7


def template_version(env: jinja2.Environment, filename: str) -> str:
    """The short hash of `filename`'s source and of the templates it includes (recursively, in a stable
    order); raises jinja2.TemplateNotFound like the environment would."""
    if env.loader is None:
        raise jinja2.TemplateNotFound(filename)
    digest = hashlib.sha256()
    seen: set[str] = set()
    todo = [filename]
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        source, _, _ = env.loader.get_source(env, name)
        digest.update(name.encode() + b"\0" + source.encode("utf-8") + b"\0")
        todo.extend(_referenced(env, source))
    return digest.hexdigest()[:VERSION_CHARS]


@lru_cache(maxsize=1024)
def _referenced(env: jinja2.Environment, source: str) -> tuple[str, ...]:
    """The templates `source` includes, in a stable order (parsed once per source: every queued mail asks)."""
    try:
        referenced = meta.find_referenced_templates(env.parse(source))
    except jinja2.TemplateSyntaxError:
        return ()  # the render reports it
    return tuple(sorted(r for r in referenced if r is not None))


def template_label(env: jinja2.Environment, name: str, language: str, suffixes: tuple[str, ...]) -> str:
    """"name.lang@version" for a message made of the files `name.lang<suffix>` that exist."""
    digest = hashlib.sha256()
    for suffix in suffixes:
        filename = f"{name}.{language}{suffix}"
        try:
            digest.update(template_version(env, filename).encode())
        except jinja2.TemplateNotFound:
            continue
    return f"{name}.{language}@{digest.hexdigest()[:VERSION_CHARS]}"
