"""The files the settings point at: the packaged defaults, the rule file and the sorter's model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.errors import ConfigError
from bot.settings.toml import read_toml

if TYPE_CHECKING:  # the sorter is imported only by the commands that sort (staff commands start faster)
    from bot.core.classify.rules import Rules
    from bot.core.classify.scorer import Model
    from bot.settings import Settings


def packaged(name: str) -> Path:
    """A file or folder the package ships in `bot/defaults`: "templates", "rules.toml", "bot.example.toml"."""
    from importlib.resources import files

    return Path(str(files("bot.defaults") / name))


def default_rules_path() -> Path:
    """The rule file shipped in the package (in the repository: `config/rules.toml`)."""
    return packaged("rules.toml")


def rules_path(settings: Settings | None) -> Path:
    """The rule file the settings ask for: paths.rules, or the packaged one when it is empty."""
    given = settings.paths.rules if settings is not None else ""
    return Path(given) if given else default_rules_path()


def load_rules(path: Path) -> Rules:
    """The rule file, read and checked; any problem is a ConfigError naming the file and the rule."""
    from bot.core.classify.rules import rules_from_data

    return rules_from_data(read_toml(path, "rule file", "config key paths.rules"), source=str(path))


def default_model_path() -> Path:
    """The sorter's model shipped in the package (rebuilt by `privacy-bot sorter train`)."""
    return Path(__file__).resolve().parent.parent / "core" / "classify" / "model.json"


def load_model(path: Path) -> Model:
    """The sorter's model file, read and checked; any problem is a ConfigError naming the file."""
    import json

    from bot.core.classify.scorer import model_from_data

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sorter model {path} not found (config key sorter.model)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sorter model {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"sorter model {path} is not valid JSON: {exc}") from None
    return model_from_data(data, source=str(path))


def sorter_model(settings: Settings | None) -> Model | None:
    """The model the settings ask for: None when sorter.use_model is off."""
    if settings is not None and not settings.sorter.use_model:
        return None
    given = settings.sorter.model if settings is not None else ""
    return load_model(Path(given) if given else default_model_path())
