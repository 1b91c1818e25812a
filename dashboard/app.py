"""Entry point of ``dif serve``: page frame, device/store info, demo bootstrap and the page router."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard.demo import ensure_demo  # noqa: E402
from dashboard.state import get_store, store_root  # noqa: E402
from dashboard.ui import guarded  # noqa: E402

# not "pages/": Streamlit would also serve files there as stand-alone pages, bypassing this router
VIEWS_DIR = Path(__file__).resolve().parent / "views"


@st.cache_resource(show_spinner=False)
def _device_text() -> str:
    from engine.device import describe_device

    return describe_device()


def _sidebar() -> None:
    with st.sidebar:
        st.caption(f"Engine device: **{_device_text()}**")
        with guarded("store"):
            st.caption(f"Store: `{store_root()}` ({len(get_store().names())} models)")


def main() -> None:
    st.set_page_config(page_title="DIF Lineage", page_icon=":material/fingerprint:", layout="wide")
    pages = {
        # the default page answers at "/" only; a hidden twin makes "/models" an address too
        "home": st.Page(
            VIEWS_DIR / "models.py", title="Models", icon=":material/inventory_2:", url_path="home", default=True
        ),
        "models": st.Page(
            VIEWS_DIR / "models.py",
            title="Models",
            icon=":material/inventory_2:",
            url_path="models",
            visibility="hidden",
        ),
        "cross": st.Page(VIEWS_DIR / "cross.py", title="Cross-detection", icon=":material/grid_on:", url_path="cross"),
        "lineage": st.Page(
            VIEWS_DIR / "lineage.py", title="Lineage", icon=":material/account_tree:", url_path="lineage"
        ),
        "attribute": st.Page(
            VIEWS_DIR / "attribute.py", title="Attribute", icon=":material/image_search:", url_path="attribute"
        ),
    }
    current = st.navigation(list(pages.values()))
    ensure_demo()
    _sidebar()  # after the demo build, so the model count it shows includes the zoo
    report = st.query_params.get("report")
    if report and current.url_path != "lineage":  # a shared link opened on the root URL
        st.switch_page(pages["lineage"], query_params={"report": report})
    current.run()


main()
