"""The bundled ``classification`` evaluate module (a package only so that it ships with the toolkit)."""
