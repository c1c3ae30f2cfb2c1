"""The lending marketplace as an HTTP API, on SQLAlchemy's AsyncSession (asyncpg, or aiosqlite by default).

The models and notifiers are the lending example's own (``examples.lending``). Each request
opens an ``AsyncSession``, fires a trigger with ``await loan.fire_async(...)`` and commits: the
fan-out is enqueued after that commit, and the workers (``tidings worker``, sync Dramatiq
processes) deliver the mail. The database is the one the workers use, ``TIDINGS_DATABASE_URL``
(a sync driver's URL, read by ``jobs``), reached here through its asyncio driver.

Run it with ``uvicorn examples.fastapi.app:app`` (see README.md beside this file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from jobs import runtime
from jobs.console import Console, Request as ConsoleRequest
from notifiers import UnsubscribeEndpoint
from pydantic import BaseModel
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from workflow import ConcurrentTransition, InvalidTransition
from workflow import metadata as tidings_metadata

from examples.lending.models import Base, Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers it (for an in-process worker)

#: The asyncio driver for each sync driver the workers may name.
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgresql+psycopg": "postgresql+asyncpg",
                 "postgresql+psycopg2": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite",
                 "sqlite+pysqlite": "sqlite+aiosqlite"}


def async_url(database_url: str) -> str:
    """The URL of ``database_url``'s database through its asyncio driver (one already async is kept)."""
    url = make_url(database_url)
    return url.set(drivername=ASYNC_DRIVERS.get(url.drivername, url.drivername)).render_as_string(hide_password=False)


async def create_tables(engine: AsyncEngine) -> None:
    """The example's tables and Tidings' own (an application would run its migrations instead)."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.run_sync(tidings_metadata.create_all)


class NewUser(BaseModel):
    name: str
    email: str


class NewItem(BaseModel):
    title: str
    owner_id: int


class NewLoan(BaseModel):
    item_id: int
    borrower_id: int


class Firing(BaseModel):
    """Who fires the trigger, and what they say (stored with the transition, shown in the mail)."""

    actor_id: int | None = None
    context: dict[str, Any] = {}


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; what a handler did not commit is rolled back when it closes."""
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(session)]


async def get_loan(loan_id: int, session: Session) -> Loan:
    """The loan of the path, or 404."""
    loan = await session.get(Loan, loan_id)
    if loan is None:
        raise HTTPException(404, f"No loan {loan_id}.")
    return loan


def describe(loan: Loan) -> dict[str, Any]:
    return {"id": loan.id, "state": loan.state, "allowed": loan.allowed_triggers()}


def create_app(database_url: str | None = None) -> FastAPI:
    """The API on ``database_url`` (default: the workers' ``TIDINGS_DATABASE_URL``).

    With ``TIDINGS_UNSUBSCRIBE_SECRET`` set, the mails' one-click unsubscribe links are answered at
    ``/unsubscribe`` (``TIDINGS_UNSUBSCRIBE_URL=https://<this API>/unsubscribe``). The operators'
    console is mounted at ``/console/`` (docs/console.md): read-only, and with
    ``TIDINGS_CONSOLE_ACTIONS=true`` re-send and refan for the operator the login proxy names.
    """
    settings = runtime.current().settings
    engine = create_async_engine(async_url(database_url or settings.database_url))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_tables(engine)
        yield
        await engine.dispose()

    app = FastAPI(title="Lending", lifespan=lifespan)
    app.state.engine = engine
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    app.add_exception_handler(ConcurrentTransition, refuse)  # a subclass: looked up before InvalidTransition
    app.add_exception_handler(InvalidTransition, refuse)
    app.include_router(router)
    if settings.unsubscribe_secret:  # the endpoint writes opt-outs through the sync driver, as the workers do
        answer_links(app, UnsubscribeEndpoint(create_engine(database_url or settings.database_url),
                                              settings.unsubscribe_secret))
    console = Console(create_engine(database_url or settings.database_url), authorize=operator,
                      actions=settings.console_actions)
    app.mount("/console", console.asgi)  # every page and form is under /console/ (a bare /console redirects there)
    return app


def operator(request: ConsoleRequest) -> str | None:
    """Who may act in the console: the user the login proxy in front of this API names (it drops the client's own).

    Use the application's own login instead where it has one, e.g. its session cookie.
    """
    return request.headers.get("x-forwarded-user") or None


def answer_links(app: FastAPI, endpoint: UnsubscribeEndpoint) -> None:
    """Answer ``/unsubscribe?token=...`` (exactly the link's path: a one-click POST follows no redirect)."""

    @app.api_route("/unsubscribe", methods=["GET", "HEAD", "POST"], include_in_schema=False)
    async def unsubscribe(request: Request) -> HTMLResponse:
        status, page = await run_in_threadpool(endpoint.answer, request.method, request.url.query)
        return HTMLResponse(page, status_code=int(status.split()[0]))


async def refuse(request: Request, error: Exception) -> JSONResponse:
    """409 when another request changed the loan first (reload and decide again); 422 when the trigger is not allowed."""
    assert isinstance(error, InvalidTransition)
    status = 409 if isinstance(error, ConcurrentTransition) else 422
    return JSONResponse({"detail": str(error), "trigger": error.trigger, "state": error.state}, status_code=status)


router = APIRouter()


@router.post("/users", status_code=201)
async def new_user(body: NewUser, session: Session) -> dict[str, Any]:
    user = User(name=body.name, email=body.email)
    session.add(user)
    await session.commit()
    return {"id": user.id, "name": user.name}


@router.post("/items", status_code=201)
async def new_item(body: NewItem, session: Session) -> dict[str, Any]:
    item = Item(title=body.title, owner_id=body.owner_id)
    session.add(item)
    await session.commit()
    return {"id": item.id, "title": item.title}


@router.post("/loans", status_code=201)
async def new_loan(body: NewLoan, session: Session) -> dict[str, Any]:
    loan = Loan(item_id=body.item_id, borrower_id=body.borrower_id)
    session.add(loan)
    await session.commit()
    return describe(loan)


@router.get("/loans/{loan_id}")
async def show_loan(loan: Annotated[Loan, Depends(get_loan)]) -> dict[str, Any]:
    return describe(loan)


@router.post("/loans/{loan_id}/{trigger}")
async def fire(trigger: str, body: Firing, loan: Annotated[Loan, Depends(get_loan)],
               session: Session) -> dict[str, Any]:
    actor = await session.get(User, body.actor_id) if body.actor_id is not None else None
    record = await loan.fire_async(trigger, actor=actor, **body.context)  # conditions may load loan.item
    await session.commit()  # the fan-out is enqueued now, not before
    return {**describe(loan), "transition_id": record.id}


app = create_app()
