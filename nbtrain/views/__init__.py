"""Views: static plots, run comparison, live plots and the interactive dashboard."""
