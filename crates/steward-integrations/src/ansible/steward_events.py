# Steward's stdout callback for ansible-playbook: one JSON object per line.
#
# Shipped inside the Steward binary and written to a private directory for
# each run (ANSIBLE_CALLBACK_PLUGINS points there, ANSIBLE_STDOUT_CALLBACK
# selects it), so no collection has to be installed on the controller.
#
# What it prints is chosen field by field, never a whole result: module
# arguments (`invocation`), variables, facts and the environment are left out,
# because they can hold passwords and tokens. Results of `no_log` tasks arrive
# already censored by Ansible and are reported as such. Long texts are cut.

from __future__ import annotations

DOCUMENTATION = '''
    name: steward_events
    type: stdout
    short_description: one JSON event per line, for Steward
    description:
        - Prints playbook, play and task starts, each host's result (with diffs), and the recap as JSON lines.
'''

import difflib
import json
import sys

from ansible.plugins.callback import CallbackBase

# Characters kept of a message, of stdout/stderr, and of all diffs of one result.
MSG_CAP = 4000
STREAM_CAP = 2000
DIFF_CAP = 20000

CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"


def _cut(text, cap):
    text = text if isinstance(text, str) else json.dumps(text, sort_keys=True, default=str)
    if len(text) <= cap:
        return text
    return text[:cap] + "\n[cut: %d more characters]" % (len(text) - cap)


def _tail(text, cap):
    text = text if isinstance(text, str) else str(text)
    if len(text) <= cap:
        return text
    return "[cut: %d characters before]\n" % (len(text) - cap) + text[-cap:]


def _side(value):
    if value is None:
        return ''
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, indent=4, default=str) + '\n'


def _render_diff(diffs):
    """A unified diff of each before/after pair, like the default callback's, without colour."""
    if not isinstance(diffs, list):
        diffs = [diffs]
    out = []
    for diff in diffs:
        if not isinstance(diff, dict):
            continue
        for key, what in (('dst_binary', 'destination file appears to be binary'),
                          ('src_binary', 'source file appears to be binary'),
                          ('dst_larger', 'destination file is too large'),
                          ('src_larger', 'source file is too large')):
            if key in diff:
                out.append('diff skipped: %s\n' % what)
        if 'before' in diff and 'after' in diff:
            before = _side(diff['before']).splitlines(True)
            after = _side(diff['after']).splitlines(True)
            if before and not before[-1].endswith('\n'):
                before[-1] += '\n\\ No newline at end of file\n'
            if after and not after[-1].endswith('\n'):
                after[-1] += '\n\\ No newline at end of file\n'
            before_header = 'before: %s' % diff['before_header'] if 'before_header' in diff else 'before'
            after_header = 'after: %s' % diff['after_header'] if 'after_header' in diff else 'after'
            out.extend(difflib.unified_diff(before, after, fromfile=before_header, tofile=after_header, n=3))
        if 'prepared' in diff:
            out.append(_side(diff['prepared']))
    return _cut(''.join(out), DIFF_CAP)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'steward_events'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._play = None

    def _emit(self, event, **fields):
        fields['event'] = event
        try:
            line = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            line = json.dumps({'event': 'error', 'msg': 'cannot encode an event: %s' % e})
        sys.stdout.write(line + '\n')
        sys.stdout.flush()

    @staticmethod
    def _task_fields(task):
        return {'task': task.get_name().strip(), 'action': task.action, 'task_id': str(task._uuid)}

    def _result(self, status, result, ignore_errors=False):
        res = result._result if isinstance(result._result, dict) else {}
        fields = self._task_fields(result._task)
        fields['host'] = result._host.get_name()
        fields['status'] = status
        if res.get('censored') is not None or res.get('_ansible_no_log'):
            # Ansible replaced the result; say so and print nothing of it.
            fields['censored'] = True
            self._emit('result', **fields)
            return
        items = res.get('results') if isinstance(res.get('results'), list) else []
        msg = res.get('msg')
        if msg is None:
            for item in items:
                if isinstance(item, dict) and item.get('failed') and item.get('msg') is not None:
                    msg = item.get('msg')
                    break
        if msg is None and status == 'skipped' and res.get('skip_reason'):
            msg = res.get('skip_reason')
        if msg is not None:
            fields['msg'] = _cut(msg, MSG_CAP)
        diffs = []
        if res.get('diff'):
            diffs.append(res['diff'])
        for item in items:
            if isinstance(item, dict) and item.get('diff') and not item.get('_ansible_no_log'):
                diffs.append(item['diff'])
        flat = []
        for d in diffs:
            flat.extend(d if isinstance(d, list) else [d])
        if flat:
            rendered = _render_diff(flat)
            if rendered:
                fields['diff'] = rendered
        if status == 'skipped' and msg is not None and 'check mode' in str(msg):
            # Modules without check-mode support, and `command`/`shell`
            # without creates/removes, skip themselves in check mode.
            fields['check_mode_unsupported'] = True
        if status in ('failed', 'unreachable'):
            for key in ('stdout', 'stderr', 'module_stdout', 'module_stderr'):
                if res.get(key):
                    fields[key] = _tail(res[key], STREAM_CAP)
            if res.get('rc') is not None:
                fields['rc'] = res.get('rc')
        if ignore_errors:
            fields['ignored'] = True
        if res.get('warnings'):
            fields['warnings'] = [_cut(w, MSG_CAP) for w in res['warnings'] if isinstance(w, str)]
        self._emit('result', **fields)

    def v2_playbook_on_start(self, playbook):
        self._emit('playbook_start', playbook=str(playbook._file_name).rsplit('/', 1)[-1])

    def v2_playbook_on_play_start(self, play):
        hosts = play.hosts if isinstance(play.hosts, list) else [play.hosts]
        self._emit('play_start', name=play.get_name().strip(), hosts=[str(h) for h in hosts])

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit('task_start', **self._task_fields(task))

    def v2_playbook_on_handler_task_start(self, task):
        self._emit('task_start', handler=True, **self._task_fields(task))

    def v2_playbook_on_no_hosts_matched(self):
        self._emit('no_hosts_matched')

    def v2_playbook_on_no_hosts_remaining(self):
        self._emit('no_hosts_remaining')

    def v2_runner_on_ok(self, result):
        changed = bool(result._result.get('changed', False)) if isinstance(result._result, dict) else False
        self._result('changed' if changed else 'ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('failed', result, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result('skipped', result)

    def v2_runner_on_unreachable(self, result):
        self._result('unreachable', result)

    def v2_runner_retry(self, result):
        fields = self._task_fields(result._task)
        fields['host'] = result._host.get_name()
        fields['attempts'] = result._result.get('attempts') if isinstance(result._result, dict) else None
        self._emit('retry', **fields)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            hosts[host] = {
                'ok': s.get('ok', 0),
                'changed': s.get('changed', 0),
                'failed': s.get('failures', 0),
                'unreachable': s.get('unreachable', 0),
                'skipped': s.get('skipped', 0),
                'rescued': s.get('rescued', 0),
                'ignored': s.get('ignored', 0),
            }
        self._emit('stats', hosts=hosts)

    # Quiet: item results arrive again, together, in the task's own result.
    def v2_runner_item_on_ok(self, result):
        pass

    def v2_runner_item_on_failed(self, result):
        pass

    def v2_runner_item_on_skipped(self, result):
        pass

    def v2_on_file_diff(self, result):
        pass
