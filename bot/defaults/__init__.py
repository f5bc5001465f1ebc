"""What the package ships for an admin to override: the reply and staff templates (`templates/`), the
sorting rules (`rules.toml`) and the commented example config (`bot.example.toml`).

Data only, read with importlib.resources. In the repository these are links to the top-level
`templates/` and `config/` folders (the one copy of each file); a built wheel carries the files.
"""
