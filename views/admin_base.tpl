% rebase('base')
<div class="admin">
  <div class="admin-bar">
    <p class="admin-title"><strong>Editorial desk</strong></p>
    % if logged_in:
    <nav aria-label="Desk">
      <ul>
        <li><a href="/admin">Queues</a></li>
        <li><a href="/admin/runs">Pipeline runs</a></li>
        <li><a href="/admin/cards">Card facts</a></li>
      </ul>
    </nav>
    <form method="post" action="/admin/logout" class="inline">
      <input type="hidden" name="csrf_token" value="{{csrf_token}}">
      <button type="submit" class="button button-quiet">Log out</button>
    </form>
    % end
  </div>
  % if flash:
  <p class="flash" role="status">{{flash}}</p>
  % end
  {{!base}}
</div>
