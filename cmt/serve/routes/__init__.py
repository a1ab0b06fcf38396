"""The service's routers: probes and metrics (`probes`), the analysis (`analyze`)."""
