"""The client's markdown renderer (static/js/markdown.js), run in the browser: it builds DOM
nodes, so user text can never become markup, scripts or javascript: links."""

from __future__ import annotations

import pytest

from conftest import Console, OpenPage

pytestmark = pytest.mark.database_kinds("sqlite")


def link(href: str, text: str, title: bool = False) -> str:
    more = f' title="{href}"' if title else ""
    return (
        f'<a class="md-link" href="{href}" target="_blank" rel="noopener noreferrer"{more}>'
        f"{text}</a>"
    )


CASES = [
    (
        "**bold** *it* _it_ __under__ ~~gone~~",
        "<strong>bold</strong> <em>it</em> <em>it</em> <u>under</u> <s>gone</s>",
    ),
    ("**a *b* c**", "<strong>a <em>b</em> c</strong>"),
    ("snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"),
    ("\\*not italic\\* \\@everyone", "*not italic* @everyone"),
    ("`a <b> **c**`", '<code class="md-code">a &lt;b&gt; **c**</code>'),
    (
        "```js\nlet a = '<b>';\n```tail",
        '<pre class="md-pre"><code data-lang="js">let a = \'&lt;b&gt;\';</code></pre>tail',
    ),
    ("line one\nline two", "line one<br>line two"),
    (
        "see https://e.example/x?a=1&b=2.",
        "see " + link("https://e.example/x?a=1&amp;b=2", "https://e.example/x?a=1&amp;b=2") + ".",
    ),
    ("[docs](https://e.example/d)", link("https://e.example/d", "docs", title=True)),
    ("<https://e.example/>", link("https://e.example/", "https://e.example/")),
    (
        "[x](javascript:alert(1)) <javascript:alert(1)>",
        "[x](javascript:alert(1)) &lt;javascript:alert(1)&gt;",
    ),
    ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)"&gt;'),
    ('"><script>alert(1)</script>', '"&gt;&lt;script&gt;alert(1)&lt;/script&gt;'),
    (
        "<@1> <@2> <@&3> @everyone me@everyone.example",
        '<span class="mention mention-me" data-user-id="1">@Me</span> '
        '<span class="mention" data-user-id="2">@Other</span> '
        '<span class="mention">@Mods</span> '
        '<span class="mention mention-me">@everyone</span> me@everyone.example',
    ),
    (
        "||secret **x**||",
        '<span class="spoiler" tabindex="0" role="button" aria-expanded="false" '
        'title="Spoiler: press to reveal">secret <strong>x</strong></span>',
    ),
]

RENDER = """async (cases) => {
  const { renderMarkdown, plainText } = await import('/static/js/markdown.js');
  const ctx = {
    meId: '1',
    userName: (id) => ({ 1: 'Me', 2: 'Other' })[id] ?? null,
    roleName: (id) => (id === '3' ? 'Mods' : null),
  };
  const out = cases.map((source) => {
    const box = document.createElement('div');
    box.append(renderMarkdown(source, ctx));
    return box.innerHTML;
  });
  // A spoiler reveals itself on click; a preview hides it.
  const box = document.createElement('div');
  box.append(renderMarkdown('||hidden||'));
  document.body.append(box);
  box.querySelector('.spoiler').click();
  const revealed = box.querySelector('.spoiler').className;
  box.remove();
  return { out, revealed, plain: plainText('**a** ||b|| <@2>\\n`c`', ctx) };
}"""


async def test_markdown_renders_safe_dom(open_page: OpenPage, console: Console) -> None:
    page = await open_page("markdown")
    result = await page.evaluate(RENDER, [source for source, _ in CASES])
    for (source, expected), got in zip(CASES, result["out"], strict=True):
        assert got == expected, source
    assert result["revealed"] == "spoiler revealed"
    assert result["plain"] == "a ▒▒▒▒ @Other c"
    # Hostile input made no element other than the renderer's own.
    hostile = await page.evaluate(
        """async () => {
          const { renderMarkdown } = await import('/static/js/markdown.js');
          const box = document.createElement('div');
          box.append(renderMarkdown('<a href="javascript:x">x</a><iframe srcdoc=x></iframe>' +
            '[a](data:text/html,x) <style>*{}</style> **<b onclick=x>**'));
          return [...box.querySelectorAll('*')].map((e) => e.tagName);
        }"""
    )
    assert hostile == ["STRONG"]
    console.check()
