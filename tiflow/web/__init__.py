"""`tiflow web`: the French web application for coordinators, pilots and COPIL members.

Server-rendered pages (Jinja2, autoescaped), plain HTML forms, assets shipped in the package
(no CDN, no build step). It is part of the shell: it reads through the repository and writes
only through the use cases the flows call (`flows.usecases.*`), in a unit of work, with the
signed-in person as the actor of every history row.

* `config.py`: settings from the environment (secret key, public URL, expiries, limits);
* `security.py`: signed tokens, digests, CSRF tokens;
* `access.py`: who is signed in, their roles per territory, and THE route table
  (`ROUTES`): which roles may use each route (tests are generated from it);
* `signin.py`: sign-in by e-mail link, sign-out;
* `pilot.py`: "Mes actions", the action page and its progress forms;
* `copil.py`: the plan (filters), the COPIL pages (agenda, digest, decisions);
* `app.py`: the FastAPI application (`create_app`).
"""
