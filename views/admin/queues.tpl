% rebase('admin/layout')
<h1>Queues</h1>
<ul class="queue-tabs">
  <li><a href="/admin" {{!'aria-current="page"' if not selected else ''}}>All</a></li>
  % for status in order:
  <li><a href="/admin?status={{status}}" {{!'aria-current="page"' if selected == status else ''}}>{{labels[status]}} <span class="count" data-status="{{status}}">{{counts[status]}}</span></a></li>
  % end
</ul>
% for status, articles in lists:
<section class="queue" id="queue-{{status}}">
  <h2>{{labels[status]}} <span class="count">{{counts[status]}}</span></h2>
  % if articles:
  <table class="admin-table">
    <thead><tr><th>Title</th><th>Type</th><th>Critic</th><th>Updated</th></tr></thead>
    <tbody>
    % for a in articles:
    <tr>
      <td><a href="/admin/articles/{{a['id']}}">{{a['title']}}</a></td>
      <td><span class="tag tag-{{a['type']}}">{{a['type']}}</span></td>
      <td>{{'—' if a['critic_score'] is None else '%g' % a['critic_score']}}</td>
      <td>{{!display.date_tag(a['updated_at'])}}</td>
    </tr>
    % end
    </tbody>
  </table>
  % if not selected and counts[status] > len(articles):
  <p><a href="/admin?status={{status}}">All {{counts[status]}} {{labels[status].lower()}}</a></p>
  % end
  % else:
  <p class="meta">None.</p>
  % end
</section>
% end
<section class="queue">
  <h2>Latest pipeline runs</h2>
  % include('admin/trigger')
  % include('admin/runs_table')
  <p><a href="/admin/runs">All runs</a></p>
</section>
