% if runs:
<table class="admin-table">
  <thead><tr><th>Run</th><th>Trigger</th><th>Status</th><th>Started</th><th>Finished</th><th>Counts</th><th>Errors</th><th>Failed calls</th></tr></thead>
  <tbody>
  % for run in runs:
  <tr>
    <td>#{{run['id']}}</td>
    <td>{{run['trigger']}}</td>
    <td><span class="status status-run-{{run['status']}}">{{run['status']}}</span></td>
    <td>{{run['started_at']}}</td>
    <td>{{run['finished_at'] or '—'}}</td>
    <td>{{', '.join(f'{k}: {v}' for k, v in run['counts'].items()) or '—'}}</td>
    <td>
      % if run['errors']:
      <details><summary>{{len(run['errors'])}}</summary>
        <ul>
        % for error in run['errors']:
          <li>{{error}}</li>
        % end
        </ul>
      </details>
      % else:
      0
      % end
    </td>
    <td>
      % failures = run.get('failures') or []
      % if failures:
      <details class="failures"><summary>{{len(failures)}}</summary>
        <table class="admin-table">
          <thead><tr><th>Source or model</th><th>Story</th><th>Reason</th></tr></thead>
          <tbody>
          % for f in failures:
          % kind = next((k for k in ('source', 'model', 'feed') if k in f), 'call')
          <tr><td>{{kind}} {{f.get(kind, '')}}</td><td>{{f.get('story') or '—'}}</td><td>{{f.get('reason', '')}}</td></tr>
          % end
          </tbody>
        </table>
      </details>
      % else:
      0
      % end
    </td>
  </tr>
  % end
  </tbody>
</table>
% else:
<p class="empty">No pipeline runs yet.</p>
% end
