"""Reports: tables (markdown, CSV), plots. Reads only the results store and saved predictions."""
