"""The bundled ``regression`` evaluate module (a package only so that it ships with the toolkit)."""
