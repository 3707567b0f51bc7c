"""Asks a download URL once, quickly, whether it serves the archive.

TFDS's downloader retries for minutes, and image-net.org answers most
requests with a login page (docs/sources.md): the builder asks each URL for
its first four bytes, with a short timeout, and stops unless they start a zip.
"""

from __future__ import annotations

import http.client
import threading
import urllib.error
import urllib.parse
import urllib.request

# Every zip file starts with a local file header.
ZIP_MAGIC = b'PK\x03\x04'
# Seconds to wait for an answer, name lookup included.
TIMEOUT_SECONDS = 10.0


def _ask(url: str, timeout: float) -> str | None:
  """Why `url` cannot give a zip archive, or None if it starts like one."""
  request = urllib.request.Request(
      url,
      headers={
          'Range': f'bytes=0-{len(ZIP_MAGIC) - 1}',
          'User-Agent': 'imagenet_resized download probe',
      },
  )
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      content_type = response.headers.get_content_type()
      head = response.read(len(ZIP_MAGIC))
      final_url = response.geturl()
  except urllib.error.HTTPError as e:
    return f'{url} answered HTTP {e.code} {e.reason}'
  except urllib.error.URLError as e:
    reason = getattr(e.reason, 'strerror', None) or e.reason
    return f'cannot reach {urllib.parse.urlsplit(url).netloc} ({reason})'
  except (OSError, http.client.HTTPException, ValueError) as e:
    return f'cannot download {url} ({type(e).__name__}: {e})'
  if head == ZIP_MAGIC:
    return None
  what = (
      'an HTML page (a login page?)'
      if content_type == 'text/html'
      else f'{content_type} content that is not a zip'
  )
  redirected = f' after a redirect to {final_url}' if final_url != url else ''
  return f'{url} answered with {what}{redirected}'


def why_not_downloadable(
    url: str, timeout: float = TIMEOUT_SECONDS
) -> str | None:
  """One phrase saying why `url` will not give the archive, or None, within
  about `timeout` seconds (in a thread: socket timeouts miss name lookups)."""
  answer: list[str | None] = []
  thread = threading.Thread(
      target=lambda: answer.append(_ask(url, timeout)),
      name='imagenet_resized-download-probe',
      daemon=True,
  )
  thread.start()
  thread.join(timeout + 1)
  if not answer:
    return f'no answer from {urllib.parse.urlsplit(url).netloc} within {timeout:.0f} s'
  return answer[0]
