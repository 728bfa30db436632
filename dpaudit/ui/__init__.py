"""``dpaudit ui``: a local web application over the same front door as the CLI (docs/ui.md)."""
