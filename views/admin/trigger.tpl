<div class="admin-trigger">
  % configured, reason = pipeline
  % if configured:
  <form method="post" action="/admin/runs" class="inline">
    <input type="hidden" name="csrf_token" value="{{csrf_token}}">
    <button type="submit" class="button">Run the pipeline now</button>
  </form>
  <p class="meta">{{reason}}</p>
  % else:
  <button type="button" class="button" disabled>Run the pipeline now</button>
  <p class="meta">Pipeline not configured: {{reason}}</p>
  % end
</div>
