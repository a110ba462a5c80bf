"""The staff dashboard: selectors (aggregate reads), series and charts (SVG), views."""
