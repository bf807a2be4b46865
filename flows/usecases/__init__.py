"""The use cases the flows run, without Prefect: each reads and checks inside a unit of work,
writes, and leaves the commit to its caller (a flow, the CLI, the web application, a test)."""
