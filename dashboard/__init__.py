"""The Streamlit dashboard: a thin UI over the ``engine`` API (no method logic lives here)."""
