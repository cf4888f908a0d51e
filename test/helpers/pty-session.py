#!/usr/bin/env python3
"""Runs a command on a real pseudo-terminal and plays a technician's keystrokes.

Usage: pty-session.py SCRIPT.json
SCRIPT: {"argv": [...], "env": {...}, "steps": [{"expect": REGEX, "send": TEXT, "signal": NAME, "hangup": true}], "timeout": SECONDS}
Each step waits until REGEX appears in the output after the previous match, then
sends the signal NAME (HUP, TERM, …) if given, then types TEXT one byte at a time, as a person (or a paste over a 115200-baud line)
would; "hangup" closes the terminal's line (the pty's master side), as a console
cable pulled or a serial line dropped would, and ends the steps. Prints JSON: exit status, the whole output (base64), the pty's echo and
canonical-mode flags once the command has ended, and the step that timed out, if any.
"""
import base64
import json
import os
import re
import select
import signal
import sys
import termios
import time

script = json.load(open(sys.argv[1]))
pid, master = os.forkpty()
if pid == 0:
    env = dict(os.environ)
    env.update(script.get('env', {}))
    os.execvpe(script['argv'][0], script['argv'], env)

output = b''
deadline = time.time() + script.get('timeout', 20)
failed_step = None
position = 0


def pump(wait):
    global output
    ready, _, _ = select.select([master], [], [], wait)
    if not ready:
        return True
    try:
        data = os.read(master, 4096)
    except OSError:
        return False
    if not data:
        return False
    output += data
    return True


alive = True
hung_up = False
for index, step in enumerate(script['steps']):
    pattern = re.compile(step['expect'].encode('latin1'))
    while alive:
        match = pattern.search(output, position)
        if match:
            position = match.end()
            break
        if time.time() > deadline:
            failed_step = index
            break
        alive = pump(0.05)
    if failed_step is not None or not alive and not pattern.search(output, position):
        failed_step = index if failed_step is None else failed_step
        break
    if step.get('delay'):
        time.sleep(step['delay'] / 1000)
    if step.get('signal'):
        os.kill(pid, getattr(signal, 'SIG' + step['signal']))
    for byte in step.get('send', '').encode('latin1'):
        os.write(master, bytes([byte]))
        time.sleep(0.002)
    if step.get('hangup'):
        os.close(master)
        hung_up = True
        alive = False
        break

while alive and time.time() < deadline:
    alive = pump(0.05)

echo = icanon = None
if not hung_up:
    try:
        attrs = termios.tcgetattr(master)
        lflag = attrs[3]
        echo, icanon = bool(lflag & termios.ECHO), bool(lflag & termios.ICANON)
    except termios.error:
        pass

status = None
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    status = None
    time.sleep(0.02)
if status is None:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
print(json.dumps({
    'status': os.waitstatus_to_exitcode(status),
    'output': base64.b64encode(output).decode(),
    'echo': echo,
    'icanon': icanon,
    'failedStep': failed_step,
}))
