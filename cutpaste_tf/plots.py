"""matplotlib, reached one way: ``pyplot`` on the Agg backend (or an ImportError that names what
needs it and how to install it), and a figure rendered to PNG bytes. Plots are optional: the rest
of the package works without matplotlib (``pip install -e .[viz]`` adds it)."""

from __future__ import annotations

import io


def pyplot(needed_by: str = "The HTML report"):
    """matplotlib.pyplot on the Agg backend, or a clear ImportError saying what needs it."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(f"{needed_by} needs matplotlib: pip install -e .[viz]") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_png(fig, dpi: int = 80, tight: bool = True) -> bytes:
    """Renders a matplotlib figure to PNG bytes (cropped to its content when ``tight``) and
    closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    pyplot().close(fig)
    return buf.getvalue()
