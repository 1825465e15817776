"""The ``ask`` command. Thin: parse, call the pipeline, print.

``ask "question"`` is the default command; ``ask ingest``, ``ask stats``,
``ask search``, ``ask doctor`` and ``ask chat`` sit beside it, and other packages add
commands through the ``abstracta.commands`` entry-point group (``ask ui``, ``ask eval``:
as simonw/llm's plugins add theirs), so the core imports no face. Heavy libraries are
imported inside the commands, so ``ask --help`` stays instant.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from click_default_group import DefaultGroup

from rag.console import WaitingLine, auto_ingest, bar_note, echo, echo_json, progress_bar, run_stats
from rag.errors import AbstractaError, Interrupted
from rag.export import FORMATS
from rag.serialize import answer_to_dict, hit_to_dict, paper_to_dict
from rag.text import display_safe
from rag.types import Answer

COMMANDS = "abstracta.commands"  # the entry-point group faces add commands through


def _plugins(ctx: click.Context) -> dict:
    """The commands other packages register (``ask ui``, ``ask eval``: pyproject.toml's
    entry points), by name. Read once per run and kept in the run's context: reading them
    scans every installed package (tens of ms), and ``ask --help`` asks for each name."""
    if COMMANDS not in ctx.meta:
        from importlib.metadata import entry_points

        ctx.meta[COMMANDS] = {ep.name: ep for ep in entry_points(group=COMMANDS)}
    return ctx.meta[COMMANDS]


_FORWARD = {"ignore_unknown_options": True, "allow_extra_args": True,
            "help_option_names": []}


def plugin_command(ep) -> click.Command:
    """``ask NAME ARGS...`` run as the click command the entry point names, with "ask NAME"
    in its usage lines. ``ask --help`` shows the command's ``short_help`` (else its help),
    shortened as click shortens a docstring. A plugin that does not load is still listed,
    and running it is a one-line error instead of a traceback."""
    failure = ""
    try:
        command = ep.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"{type(command).__name__} is not a click command")
        summary = command.short_help or command.help or ""
    except Exception as exc:  # anything an import can raise: missing module, syntax, name
        reason = display_safe(" ".join(f"{type(exc).__name__}: {exc}".split()), newlines=False)
        summary = f"(not available: {reason})"
        failure = display_safe(f"`ask {ep.name}` is not available: its plugin {ep.value} did "
                               f"not load ({reason}). Reinstall the package that provides it.",
                               newlines=False)

    @click.command(name=ep.name, help=summary, context_settings=_FORWARD, add_help_option=False)
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def forward(args):
        if failure:
            raise click.ClickException(failure)
        command.main(args=list(args), prog_name=f"ask {ep.name}", standalone_mode=False)

    return forward


class AskGroup(DefaultGroup):
    """``ask "question"`` runs the ``question`` command (click-default-group), and
    ``ask --help`` lists that command's options next to the subcommands, the plugins'
    commands (:data:`COMMANDS`) among them."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, args or ["--help"])  # bare `ask`: the help, exit 0

    def list_commands(self, ctx):
        return sorted({*self.commands, *_plugins(ctx)})

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and (ep := _plugins(ctx).get(cmd_name)) is not None:
            return plugin_command(ep)
        return super().get_command(ctx, cmd_name)  # a built-in, else the question

    def format_usage(self, ctx, formatter):
        formatter.write_usage("ask", '[OPTIONS] "QUESTION" | COMMAND [ARGS]...')

    def format_options(self, ctx, formatter):
        click.Command.format_options(self, ctx, formatter)  # --version, --help
        default = self.commands[self.default_cmd_name]
        rows = [rec for p in default.get_params(ctx)  # its options, not QUESTION or --help
                if isinstance(p, click.Option) and p.expose_value
                and (rec := p.get_help_record(ctx))]
        with formatter.section('Options of ask "QUESTION"'):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)


def common_options(fn):
    """--data-dir and --chroma-url on every command."""
    fn = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Index folder (env ABSTRACTA_DATA_DIR; default ~/.local/share/abstracta).",
    )(fn)
    fn = click.option("--chroma-url", default=None,
                      help="Use the Chroma server at this URL (env ABSTRACTA_CHROMA_URL).")(fn)
    return fn


def retrieval_options(fn):
    fn = click.option("-k", "--top-k", "k", type=click.IntRange(1, 100), default=None,
                      help="Number of papers to retrieve (default 5).")(fn)
    fn = click.option("--since", default=None, help="Only papers listed on/after this date "
                      "(2024-08-13, Aug 13 or 08-13).")(fn)
    fn = click.option("--until", default=None, help="Only papers listed on/before this date.")(fn)
    fn = click.option("--source", "sources", multiple=True,
                      help="Only papers from this source file (repeatable; substring match).")(fn)
    fn = click.option("--category", "categories", multiple=True,
                      help="Only papers in this arXiv category (repeatable: any of them): "
                      "cs.CL, or cs for every cs.* (`ask stats` lists them).")(fn)
    fn = click.option("--author", "authors", multiple=True,
                      help="Only papers by this author (repeatable: any of them): Hinton, "
                      "G. Hinton; whole words, case and accents aside.")(fn)
    return fn


def format_options(fn):
    """--format (text, json, markdown, bibtex, ris) and --json, its alias for json."""
    fn = click.option("--json", "as_json", is_flag=True,
                      help="Print one JSON object (the same as --format json).")(fn)
    fn = click.option("--format", "fmt", default=None,
                      type=click.Choice(["text", "json", *FORMATS], case_sensitive=False),
                      help="Output: text (default), json, markdown, bibtex or ris (see "
                      "README: Exports).")(fn)
    return fn


def _format(fmt: str | None, as_json: bool) -> str:
    """The output format --format and --json name together ("text" when neither)."""
    fmt = fmt.lower() if fmt else None
    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} disagree: give one of them.")
    return "json" if as_json else fmt or "text"


def _settings(data_dir=None, chroma_url=None, **extra):
    from rag.settings import load_settings

    return load_settings(data_dir=data_dir, chroma_url=chroma_url, **extra)


def _filters(since, until, sources, categories=(), authors=()):
    from rag.pipeline import parse_filters

    try:
        return parse_filters(since, until, sources, categories, authors)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group(cls=AskGroup, default="question",
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="abstracta", prog_name="ask")
def cli():
    """Abstracta: ask questions of research-paper abstracts, get answers with cited papers.

    \b
    ask "Which paper combines group quantization with structured sparsity?"
    ask --json "..."          one JSON object (see README: JSON output)
    ask ingest PATH...        add listing pages, arXiv JSON Lines or CSV files
    ask search "query"        ranked papers only, no answer
    ask similar PAPER         papers like one indexed paper (its id or exact title)
    ask chat                  a conversation with follow-up questions
    ask ui                    the browser chat at http://127.0.0.1:7860

    With no index yet, the first question ingests the bundled sample corpus.
    """


@cli.command(name="question")
@click.argument("question", nargs=-1, required=True)
@format_options
@click.option("--llm/--offline", "use_llm", default=None,
              help="Force the LLM answerer or the offline one (default: LLM when configured).")
@click.option("-v", "--verbose", is_flag=True, help="Also print timings and token usage.")
@retrieval_options
@common_options
def question_cmd(question, fmt, as_json, use_llm, verbose, k, since, until, sources, categories,
                 authors, data_dir, chroma_url):
    """Answer a QUESTION from the indexed papers, citing them as [n]."""
    from rag.pipeline import Pipeline
    from rag.retrieve import clean_question

    # Cleaned here, once (a rag.retrieve.Question passes the core's entry as it is), so
    # that an empty question is refused before a first run indexes the bundled corpus.
    text = clean_question(" ".join(question))
    fmt = _format(fmt, as_json)
    settings = _settings(data_dir, chroma_url)
    pipeline = Pipeline(settings)
    auto_ingest(pipeline, quiet=fmt != "text")
    filters = _filters(since, until, sources, categories, authors)
    answer, streamed = ask_streaming(pipeline, text, stream=fmt == "text" and sys.stdout.isatty(),
                                     k=k, filters=filters, use_llm=use_llm)
    if fmt != "text":
        print_answer_as(fmt, answer)
        return
    print_answer(answer, streamed)
    print_sources(answer)
    if answer.note:
        echo(f"\nNote: {answer.note}", err=True)
    if verbose:
        tokens = f"; tokens: {answer.usage}" if answer.usage else (
            "; usage not reported by this server" if answer.answerer.startswith("llm:") else "")
        echo(f"\nAnswerer: {answer.answerer}; timings (ms): {answer.timings_ms}{tokens}",
             err=True)


def print_answer_as(fmt: str, answer: Answer) -> None:
    """The answer as JSON, Markdown, or its cited papers as BibTeX or RIS (nothing on
    stdout, and a note on stderr, when it cites none)."""
    from rag.export import answer_markdown, cited_papers, render

    if fmt == "json":
        echo_json(answer_to_dict(answer))
    elif fmt == "markdown":
        echo(answer_markdown(answer), nl=False)
    elif cited := [paper for _, paper in cited_papers(answer)]:
        echo(render(fmt, cited), nl=False)
    else:
        echo("The answer cites no paper: nothing to export.", err=True)


def ask_streaming(pipeline, question: str, *, stream: bool, **options) -> tuple[Answer, str]:
    """(answer, the text streamed): ``pipeline.stream``'s tokens printed as they come when
    ``stream``, and "Waiting for the model" from its first ``Waiting`` until the first
    token. The one streaming loop of ``ask`` and ``ask chat``; notes are printed with the
    answer (they are in its ``note``)."""
    from rag.llm.events import Done, Token, Waiting

    streamed: list[str] = []
    try:
        with WaitingLine() as waiting:
            for event in pipeline.stream(question, **options):
                if isinstance(event, Waiting):
                    waiting.start()
                elif isinstance(event, Token):
                    waiting.stop()
                    if stream:
                        streamed.append(event.text)
                        echo(event.text, nl=False)
                elif isinstance(event, Done):
                    return event.answer, "".join(streamed)
    except AbstractaError:
        if streamed:
            echo("")  # the error starts on a line of its own
        raise
    raise RuntimeError("the answer's stream ended without its Done event")


def print_answer(answer: Answer, streamed: str, aside: str = "") -> None:
    """The answer after its streamed tokens (ended, and again in full when the citation
    check or a fallback changed it), or whole when nothing streamed; ``aside`` goes to
    stderr between the two."""
    if streamed:
        echo("")
        if streamed != answer.text:
            echo(f"\nFinal answer:\n{answer.text}")
    if aside:
        echo(aside, err=True)
    if not streamed:
        echo(answer.text)


def print_sources(answer) -> None:
    from rag.dates import display_date

    cited = {c.paper_id: c.n for c in answer.citations}
    hits = {h.paper.paper_id: h for h in answer.hits}
    if answer.citations:
        echo("\nSources")
        for c in answer.citations:
            p = hits[c.paper_id].paper
            when = ", ".join(display_date(d) for d in p.dates) or "date unknown"
            echo(f"  [{c.n}] {p.title}")
            echo(f"      {when} · {', '.join(p.sources)} · {p.link}")
    others = [h for h in answer.hits if h.paper.paper_id not in cited]
    if others:
        echo("\nAlso retrieved" if answer.citations else "\nClosest papers")
        for h in others:
            echo(f"  - {h.paper.title} ({', '.join(display_date(d) for d in h.paper.dates)}"
                 f" · {', '.join(h.paper.sources)})")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--rebuild", is_flag=True, help="Delete the index and start afresh.")
@click.option("--bundled", is_flag=True, help="Ingest the bundled sample corpus.")
@click.option("--no-wait", is_flag=True,
              help="Fail at once (exit 1) if another process is writing the index.")
@common_options
def ingest(paths, rebuild, bundled, no_wait, data_dir, chroma_url):
    """Add papers from files or folders (listing pages, arXiv JSON Lines, CSV).

    Re-ingesting is safe: unchanged papers are skipped, changed abstracts replace
    their old chunks, a paper seen in several files keeps every listing.
    """
    from rag.ingest import BUNDLED_CORPUS
    from rag.pipeline import Pipeline

    paths = list(paths) + ([BUNDLED_CORPUS] if bundled or (rebuild and not paths) else [])
    if not paths:
        raise click.UsageError("Name files or folders to ingest (or --bundled, or --rebuild).")
    start = time.monotonic()
    pipeline = Pipeline(_settings(data_dir, chroma_url))
    update, bar = progress_bar("Embedding", unit="records")
    with bar:
        report = pipeline.ingest(paths, update, rebuild=rebuild, wait=not no_wait,
                                 on_lock_wait=bar_note(bar))
    for reason in report.skipped:
        echo(f"skipped {reason}", err=True)
    for err in report.failed_files:
        echo(f"Error: {err}", err=True)
    echo(f"{report.summary()} in {run_stats(start)}.")
    echo(f"Index: {pipeline.count_papers()} papers in {pipeline.location}")
    if report.failed_files:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def stats(as_json, data_dir, chroma_url):
    """Show the index: papers, chunks, sources, embedding model, answerer, location."""
    from rag.dates import display_date
    from rag.pipeline import Pipeline

    info = Pipeline(_settings(data_dir, chroma_url)).stats()
    if as_json:
        echo_json(info)
        return
    echo(f"Papers:          {info['papers']}")
    echo(f"Chunks:          {info['chunks']}")
    echo(f"Embedding model: {info['embedding_model']}")
    echo(f"Answerer:        {info['answerer']}")
    echo(f"Index:           {info['location']} ({info['mode']})")
    if info["dates"]:
        echo(f"Listing dates:   {', '.join(display_date(d) for d in info['dates'][:12])}")
    echo(f"Sources ({len(info['sources'])}):")
    for name, count in info["sources"].items():
        echo(f"  {count:6d}  {name}")
    _print_categories(info["categories"])


def _print_categories(categories: dict[str, int], top: int = 20) -> None:
    """The most common categories (what `--category` takes); --json lists every one."""
    if not categories:
        return
    echo(f"Categories ({len(categories)}; use with --category):")
    for name, count in list(categories.items())[:top]:
        echo(f"  {count:6d}  {display_safe(name)}")
    if len(categories) > top:
        echo(f"  ... {len(categories) - top} more (`ask stats --json` lists them all)")


@cli.command()
@click.option("--repair", is_flag=True, help="Fix what the check finds (re-embeds broken "
              "papers from the index itself, rebuilds the BM25 cache); no paper is dropped.")
@click.option("--optimize", is_flag=True, help="Merge the BM25 cache's segments into one "
              "(searches read fewer lists); readers go on reading the old ones meanwhile.")
@common_options
def doctor(repair, optimize, data_dir, chroma_url):
    """Check the index: half-written papers, unreadable vectors, a stale BM25 cache, the
    embedding model, dense search. Exit 1 when something is wrong."""
    from rag.doctor import check
    from rag.doctor import repair as fix
    from rag.embed import embedder_model_name
    from rag.pipeline import Pipeline

    pipeline = Pipeline(_settings(data_dir, chroma_url))
    store = pipeline.store
    if optimize:
        merged = store.optimize_lexical()
        echo("Merged the BM25 cache into one segment." if merged
             else "The BM25 cache is one segment already.", err=True)
    echo(f"Checking {store.location} ...", err=True)
    model = embedder_model_name(pipeline.settings)
    found = check(store, model)
    for line in found.lines():
        echo(line)
    if found.clean:
        echo("The index is healthy.")
        return
    if not repair:
        echo("Run `ask doctor --repair` to fix it.")
        sys.exit(1)
    if found.model:
        echo("Not repaired: the embedding model (see above). Nothing was changed.")
        sys.exit(1)
    for line in fix(store, pipeline.settings, pipeline.embedder, found).repaired:
        echo(f"Repaired: {line}.")
    again = check(store, model)
    echo("The index is healthy." if again.clean else "Still wrong after the repair:")
    if not again.clean:
        for line in again.lines()[1:]:
            echo(line)
        sys.exit(1)


@cli.command(name="search")
@click.argument("query", nargs=-1, required=True)
@format_options
@retrieval_options
@common_options
def search_cmd(query, fmt, as_json, k, since, until, sources, categories, authors, data_dir,
               chroma_url):
    """List the papers that best match QUERY, with scores (no answer)."""
    from rag.export import hits_markdown, render
    from rag.pipeline import Pipeline

    fmt = _format(fmt, as_json)
    pipeline = Pipeline(_settings(data_dir, chroma_url))
    auto_ingest(pipeline, quiet=fmt != "text")
    text = " ".join(query)
    hits = pipeline.search(text, k, _filters(since, until, sources, categories, authors))
    if fmt == "json":
        echo_json([{**hit_to_dict(h), "dense": h.dense, "lexical": h.lexical} for h in hits])
        return
    if fmt != "text":
        out = hits_markdown(text, hits) if fmt == "markdown" else render(
            fmt, [h.paper for h in hits])
        echo(out, nl=False)
        return
    if not hits:
        echo("No paper matched.")
    print_ranked(hits, lambda h: f"score {h.score:.4f} · relevance {h.relevance:.2f}")


def print_ranked(hits, scores) -> None:
    """A ranked list of papers, two lines each: the title, then ``scores(hit)``, the
    dates, the sources and the id."""
    from rag.dates import display_date

    for h in hits:
        echo(f"{h.rank:2d}. {h.paper.title}")
        echo(f"    {scores(h)} · {', '.join(display_date(d) for d in h.paper.dates)} · "
             f"{', '.join(h.paper.sources)} · {h.paper.paper_id}")


@cli.command(name="similar")
@click.argument("paper", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the paper and its neighbours.")
@retrieval_options
@common_options
def similar_cmd(paper, as_json, k, since, until, sources, categories, authors, data_dir,
                chroma_url):
    """List the papers nearest to PAPER (its id, as `ask search` shows it, or its exact
    title) by their embeddings; the paper itself is left out."""
    from rag.pipeline import Pipeline

    pipeline = Pipeline(_settings(data_dir, chroma_url))
    auto_ingest(pipeline, quiet=as_json)
    ref = " ".join(paper)
    target = pipeline.paper(ref)
    hits = pipeline.similar(target.paper_id, k,
                            _filters(since, until, sources, categories, authors))
    if as_json:
        echo_json({"paper": paper_to_dict(target),
                   "similar": [{**hit_to_dict(h), "dense": h.dense} for h in hits]})
        return
    echo(f"Papers like: {target.title} ({target.paper_id})")
    if not hits:
        echo("No other paper matched.")
    print_ranked(hits, lambda h: f"similarity {h.score:.3f}")


@cli.command()
@click.option("--llm/--offline", "use_llm", default=None, help="Force an answerer.")
@retrieval_options
@common_options
def chat(use_llm, k, since, until, sources, categories, authors, data_dir, chroma_url):
    """A conversation: follow-up questions ("how fast is it?") keep the context.

    Type a question per line; an empty line, 'exit' or Ctrl-D ends the chat.
    """
    from rag.chat import Conversation
    from rag.pipeline import Pipeline

    pipeline = Pipeline(_settings(data_dir, chroma_url))
    auto_ingest(pipeline)
    conversation = Conversation()
    filters = _filters(since, until, sources, categories, authors)
    interactive = sys.stdin.isatty()
    stream = sys.stdout.isatty()
    while True:
        try:
            line = input("> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        if not line.strip() or line.strip().lower() in {"exit", "quit", ":q"}:
            break
        try:
            answer, streamed = ask_streaming(pipeline, line, stream=stream, k=k,
                                             filters=filters, conversation=conversation,
                                             use_llm=use_llm)
        except AbstractaError as exc:
            echo(f"Error: {exc}", err=True)
            continue
        aside = f"(searching: {answer.standalone_question})" if answer.standalone_question else ""
        print_answer(answer, streamed, aside)
        print_sources(answer)
        if answer.note:
            echo(f"Note: {answer.note}", err=True)
        echo("")


@cli.command(name="sync")
@click.argument("source", required=False, type=click.Choice(["hf", "arxiv"]))
@click.argument("categories", nargs=-1)
@click.option("--since", default=None, help="First day to fetch (2025-08-01).")
@click.option("--until", default=None, help="Last day of the daily listing to fetch.")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Fetch the last N days (arXiv: an OAI-PMH backfill).")
@click.option("--every", default=None, help="Run again every interval (6h, 30m) until stopped.")
@common_options
def sync_cmd(source, categories, since, until, days, every, data_dir, chroma_url):
    """Fetch new papers from the daily listing and arXiv, and index them.

    \b
    ask sync                          every source in ABSTRACTA_SYNC_SOURCES
    ask sync hf --since 2025-08-01    the Hugging Face daily papers, one request a day
    ask sync arxiv cs.CL cs.LG        last night's arXiv RSS of these categories
    ask sync arxiv cs.CL --days 7     a backfill through arXiv's OAI-PMH
    """
    from rag.feeds.commands import run_sync_command

    run_sync_command(_settings(data_dir, chroma_url), source, list(categories), since=since,
                     until=until, days=days, every=every)


@cli.command(name="new")
@click.option("--since", default=None, help="Only papers a feed listed on/after this date.")
@click.option("--category", "categories", multiple=True,
              help="Only papers in this arXiv category (repeatable; 'cs' is every cs.*).")
@click.option("-n", "--limit", type=click.IntRange(1), default=50, help="At most N papers.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def new_cmd(since, categories, limit, as_json, data_dir, chroma_url):
    """List the papers `ask sync` brought in, newest first, and each feed's last sync."""
    from rag.feeds.commands import run_new_command

    run_new_command(_settings(data_dir, chroma_url), since, tuple(categories), limit, as_json)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns Abstracta errors into one-line messages."""
    try:
        cli.main(args=argv, prog_name="ask", standalone_mode=False)
    except click.exceptions.Abort:
        echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Interrupted as exc:  # "Stopped after N of M records; run the same command ..."
        echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except AbstractaError as exc:
        echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
