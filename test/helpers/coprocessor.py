#!/usr/bin/env python3
"""A simulated serial co-processor on a real pseudo-terminal, for the serial driver's tests.

Prints the path of the pty's terminal side on stdout, then answers AT+SN? and
AT+MODEL? on the other side until it is killed. Modes:
  ok       '+SN: "<serial>"' then 'OK' (the value quoted, CRLF line ends)
  bare     '+SN: <serial>' then 'OK', LF line ends, answered one byte at a time
  error    'ERROR'
  cme      '+CME ERROR: 10'
  silent   no answer at all
  garbage  bytes that are not a protocol line
  flaky    no answer to the first command of each kind, then as ok
With --banner it prints a boot banner as soon as anything is written; with --echo it
echoes every command back, as modems do.
"""
import argparse
import os
import sys
import time
import tty

parser = argparse.ArgumentParser()
parser.add_argument('--serial', default='POS-PTY-0001')
parser.add_argument('--model', default='4')
parser.add_argument('--mode', default='ok')
parser.add_argument('--banner', action='store_true')
parser.add_argument('--echo', action='store_true')
args = parser.parse_args()

master, slave = os.openpty()
tty.setraw(master)
print(os.ttyname(slave), flush=True)

asked = {}
buffer = b''
bannered = False


def send(data, slow=False):
    if slow:
        for byte in data:
            os.write(master, bytes([byte]))
            time.sleep(0.002)
    else:
        os.write(master, data)


def answer(command):
    name = command[3:-1] if command.startswith('AT+') and command.endswith('?') else None
    if name not in ('SN', 'MODEL'):
        send(b'ERROR\r\n')
        return
    value = args.serial if name == 'SN' else args.model
    asked[name] = asked.get(name, 0) + 1
    mode = args.mode
    if mode == 'flaky':
        mode = 'silent' if asked[name] == 1 else 'ok'
    if mode == 'ok':
        send(f'+{name}: "{value}"\r\nOK\r\n'.encode())
    elif mode == 'bare':
        send(f'\n+{name}: {value}\nOK\n'.encode(), slow=True)
    elif mode == 'error':
        send(b'\r\nERROR\r\n')
    elif mode == 'cme':
        send(b'\r\n+CME ERROR: 10\r\n')
    elif mode == 'garbage':
        send(b'\x00\xff\xfe#@!\x07\r\n~~~\r\n')


while True:
    try:
        data = os.read(master, 256)
    except OSError:
        time.sleep(0.01)
        continue
    if args.banner and not bannered:
        bannered = True
        send(b'\r\nCoProc v1.2 (c) ACME\r\nready\r\n')
    if args.echo:
        send(data)
    buffer += data
    while b'\r' in buffer or b'\n' in buffer:
        cut = min(i for i in (buffer.find(b'\r'), buffer.find(b'\n')) if i >= 0)
        line, buffer = buffer[:cut], buffer[cut + 1:]
        if line.strip():
            answer(line.decode('latin1').strip())
