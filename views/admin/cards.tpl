% rebase('admin/layout')
<h1>Card facts</h1>
<p>Each card's facts and sources by age, oldest first: re-check from the top. A source's date is its own published or updated date where it states one, else the day it was read. The same list: <code>python app.py cards-report</code>.</p>
% if report:
<table class="admin-table cards-report">
  <thead><tr><th>Card</th><th>Oldest</th><th>Facts checked</th><th>Sources</th></tr></thead>
  <tbody>
  % for row in report:
  <tr>
    <td><a href="/cards/{{row['slug']}}">{{row['name']}}</a></td>
    % if row['oldest_age_days'] is None:
    <td>no sources</td>
    <td>not checked against any cited source</td>
    % else:
    <td>{{row['oldest_age_days']}} days</td>
    <td>{{!display.date_tag(row['facts_checked'])}} ({{row['checked_age_days']}} days)</td>
    % end
    <td>
      <ul>
      % for source in row['sources']:
        <li>{{!('undated, read ' + display.date_tag(source['read'])) if source['undated'] else display.date_tag(source['dated'])}} ({{source['age_days']}} days) {{source['publisher']}}: {{source['title']}}</li>
      % end
      </ul>
    </td>
  </tr>
  % end
  </tbody>
</table>
% else:
<p>No cards in the database yet: run <code>python app.py seed-cards</code>.</p>
% end
