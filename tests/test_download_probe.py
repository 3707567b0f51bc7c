"""Downloads that cannot work fail in seconds, before TFDS's retries.

A local HTTP server on loopback plays image-net.org: it serves a login page,
refuses, redirects to a login page, or serves the real bytes. A host under
`.invalid` never resolves. TFDS's downloader is spied on: when the probe says
no, it is never called (so no minutes of retries); when the server gives the
archives, TFDS downloads them and checks their checksums.
"""

import functools
import http.server
import shutil
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums

import imagenet_resized
from conftest import DUMMY_DATA, build, read_split, source_examples
from imagenet_resized.authors import download_probe
from imagenet_resized.authors import publication
from imagenet_resized import common
from imagenet_resized.common import SourceError
from test_bad_input import assert_nothing_built

LOGIN_PAGE = b'<html><body><form action="/login">Log in</form></body></html>'


class FakeImagenetOrg(http.server.BaseHTTPRequestHandler):
  """/files/NAME: the file; /login/...: a login page; /forbidden/...: 403;
  /redirect/...: 302 to the login page; /tampered/NAME: the file, one byte off."""

  def do_GET(self):
    kind, _, name = self.path.strip('/').partition('/')
    if kind in ('files', 'tampered') and (DUMMY_DATA / name).is_file():
      body = (DUMMY_DATA / name).read_bytes()
      if kind == 'tampered':
        body = body[:-1] + bytes([body[-1] ^ 1])
      self._send(200, 'application/zip', body)
    elif kind == 'login':
      self._send(200, 'text/html; charset=utf-8', LOGIN_PAGE)
    elif kind == 'forbidden':
      self._send(403, 'text/html', b'Forbidden')
    elif kind == 'redirect':
      self.send_response(302)
      self.send_header('Location', f'/login/{name}')
      self.send_header('Content-Length', '0')
      self.end_headers()
    else:
      self._send(404, 'text/plain', b'not found')

  def _send(self, status, content_type, body):
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):  # Quiet.
    del args


@pytest.fixture(scope='module')
def server():
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), FakeImagenetOrg)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{httpd.server_address[1]}'
  httpd.shutdown()


@pytest.fixture
def download_calls(monkeypatch):
  """The URLs handed to TFDS's downloader (which still runs).

  The spy declares what it wraps (functools.wraps): it only records and calls
  TFDS's own `download`, so the builder sees TFDS's downloader, as a user's
  build does (a replaced `download`, as in TFDS's test harness, is asked for
  the files with no probe)."""
  calls = []
  download = tfds.download.DownloadManager.download

  @functools.wraps(download)
  def spy(self, urls):
    calls.append(urls)
    return download(self, urls)

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', spy)
  return calls


@pytest.mark.slow  # It opens sockets (a server on loopback).
@pytest.mark.parametrize('path, why', [
    ('login/Imagenet8_val_npz.zip',
     '{url} answered with an HTML page (a login page?)'),
    ('redirect/Imagenet8_val_npz.zip',
     '{url} answered with an HTML page (a login page?) after a redirect to'
     ' {base}/login/Imagenet8_val_npz.zip'),
    ('forbidden/Imagenet8_val_npz.zip', '{url} answered HTTP 403 Forbidden'),
    ('files/no_such.zip', '{url} answered HTTP 404 Not Found'),
    ('files/Imagenet8_val_npz.zip', None),
])
def test_probe_tells_the_archive_from_what_is_not(server, path, why):
  url = f'{server}/{path}'
  expected = why and why.format(url=url, base=server)
  assert download_probe.why_not_downloadable(url) == expected


@pytest.mark.slow  # A DNS lookup.
def test_probe_of_a_host_that_does_not_resolve():
  why = download_probe.why_not_downloadable('http://imagenet-resized.invalid/x.zip')
  assert why.startswith('cannot reach imagenet-resized.invalid (')


@pytest.mark.slow  # A socket that waits for its timeout.
def test_probe_of_a_silent_host_gives_up_after_its_timeout():
  """A listening socket that never answers (as a firewalled route)."""
  import socket
  with socket.socket() as silent:
    silent.bind(('127.0.0.1', 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    why = download_probe.why_not_downloadable(f'http://127.0.0.1:{port}/x.zip', timeout=1)
  assert why in (
      f'no answer from 127.0.0.1:{port} within 1 s',
      f'cannot download http://127.0.0.1:{port}/x.zip (TimeoutError: timed out)',
  )


@pytest.mark.slow
@pytest.mark.parametrize('base, why', [
    ('{server}/login/', '{base}Imagenet8_train_npz.zip answered with an HTML'
                        ' page (a login page?)'),
    ('{server}/forbidden/', '{base}Imagenet8_train_npz.zip answered HTTP 403'
                            ' Forbidden'),
    ('http://imagenet-resized.invalid/data/', 'cannot reach imagenet-resized.invalid'),
])
def test_unusable_site_fails_at_once_with_the_manual_message(
    server, base, why, tmp_path, monkeypatch, download_calls
):
  base = base.format(server=server)
  monkeypatch.setattr(publication, 'URL_BASE', base)
  manual = tmp_path / 'manual'
  with pytest.raises(SourceError) as e:
    build('8x8', manual, tmp_path / 'data')
  message = str(e.value)
  assert message.startswith(
      'No source archives for imagenet_resized/8x8: expected'
      ' Imagenet8_train_npz.zip, Imagenet8_val_npz.zip (or the pickle zips'
  )
  assert f'looked in: {manual}; {base} (download failed: {why.format(base=base)}' in message
  assert message.endswith(
      '; the site asks for a login: download them at'
      ' https://image-net.org/download-images (Downsampled ImageNet) and put'
      f' them, unchanged, in {manual}; or to compute the images from the'
      ' ILSVRC2012 JPEGs instead, build imagenet_resized/8x8_ilsvrc2012'
      " (ImagenetResizedConfig(size=8, source='ilsvrc2012'))"
  )
  assert '\n' not in message
  assert download_calls == []  # TFDS's downloader (and its retries) never ran.
  assert_nothing_built('8x8', tmp_path / 'data')


def _serve(server, kind, monkeypatch):
  """Points the builder at the local server, checksums registered for it."""
  base = f'{server}/{kind}/'
  monkeypatch.setattr(publication, 'URL_BASE', base)
  infos = {
      base + name: checksums.compute_url_info(DUMMY_DATA / name)
      for size in common.SIZES for name in publication.download_names(size)
  }
  for url, info in infos.items():
    info.filename = url.rsplit('/', 1)[1]
  monkeypatch.setattr(imagenet_resized.Builder, 'url_infos', infos)
  return base


@pytest.mark.slow
def test_a_site_serving_the_archives_downloads_through_tfds(
    server, tmp_path, monkeypatch, download_calls
):
  base = _serve(server, 'files', monkeypatch)
  builder = build('16x16', tmp_path / 'manual', tmp_path / 'data')
  assert download_calls == [[base + n for n in publication.download_names(16)]]
  got = read_split(builder, 'validation')
  want = source_examples(DUMMY_DATA, 16, 'validation')
  assert sorted(label for _, label in got) == sorted(label for _, _, label in want)
  for image, label in got:
    assert any(np.array_equal(image, w) and label == w_label for _, w, w_label in want)
  # A second build finds the files in TFDS's download cache: no probe.
  shutil.rmtree(tmp_path / 'data' / 'imagenet_resized')
  monkeypatch.setattr(download_probe, 'why_not_downloadable', functools.partial(
      pytest.fail, 'probed a cached download'))
  assert build('16x16', tmp_path / 'manual', tmp_path / 'data').is_prepared()
  assert len(download_calls) == 2


@pytest.mark.slow
def test_downloaded_bytes_are_checked_against_the_checksums(
    server, tmp_path, monkeypatch, download_calls
):
  _serve(server, 'tampered', monkeypatch)
  with pytest.raises(SourceError) as e:
    build('8x8', tmp_path / 'manual', tmp_path / 'data')
  assert '(download failed: NonMatchingChecksumError: ' in str(e.value)
  assert len(download_calls) == 1
  assert_nothing_built('8x8', tmp_path / 'data')
