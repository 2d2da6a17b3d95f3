"""Networks (torch), one module per model family."""
