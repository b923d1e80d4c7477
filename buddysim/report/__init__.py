"""Renderers at the edge: text (rich), JSON. They read a Machine / Engine and print nothing themselves."""
