% if runs:
<table class="admin-table">
  <thead><tr><th>Run</th><th>Trigger</th><th>Status</th><th>Started</th><th>Finished</th><th>Counts</th><th>Errors</th><th>Failed calls</th></tr></thead>
  <tbody>
  % for run in runs:
  <tr>
    <td>#{{run['id']}}</td>
    <td>{{run['trigger']}}</td>
    <td><span class="status status-run-{{run['status']}}">{{run['status']}}</span></td>
    <td>{{!display.time_tag(run['started_at'])}}</td>
    <td>{{!display.time_tag(run['finished_at'])}}</td>
    <td>{{display.counts_text(run['counts'])}}</td>
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
          % for f in (display.call_failure(f) for f in failures):
          <tr><td>{{f['what']}}</td><td>{{f['story']}}</td><td>{{f['reason']}}</td></tr>
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
