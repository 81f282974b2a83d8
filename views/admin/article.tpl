% rebase('admin/layout')
% aid = article['id']
<header class="review-header">
  <p class="meta"><span class="status status-{{article['status']}}">{{labels[article['status']]}}</span>
    <span class="tag tag-{{article['type']}}">{{article['type']}}</span>
    #{{aid}} · {{article['slug']}} · created {{!display.date_tag(article['created_at'])}} · updated {{!display.date_tag(article['updated_at'])}}
    % if article['published_at']:
    · first published {{!display.date_tag(article['published_at'])}}
    % end
  </p>
  <h1>{{article['title']}}</h1>
  % if article['status'] == 'approved':
  <p>Live at <a href="/articles/{{article['slug']}}">/articles/{{article['slug']}}</a></p>
  % end
  % if article['feedback'] and article['status'] in ('revision_requested', 'pending'):
  <p class="admin-note"><strong>Editor's feedback:</strong> {{article['feedback']}}</p>
  % end
</header>

<section class="review-actions" aria-label="Actions">
  <h2>Decide</h2>
  % if not targets:
  <p class="meta">{{labels[article['status']]}} is final: no further moves.</p>
  % end
  <div class="action-row">
  % for target in targets:
    % action = actions[target]
    <form method="post" action="/admin/articles/{{aid}}/{{action}}" class="action action-{{action}}">
      <input type="hidden" name="csrf_token" value="{{csrf_token}}">
      % if action == 'request-revision':
      <label for="feedback">What should change?</label>
      <textarea id="feedback" name="feedback" required rows="2"></textarea>
      <button type="submit" class="button">Request revision</button>
      % elif action == 'approve':
      <button type="submit" class="button">{{'Re-approve and publish' if article['status'] == 'unpublished' else 'Approve and publish'}}</button>
      % elif action == 'reject':
      <label for="reject-reason">Reason (optional)</label>
      <input type="text" id="reject-reason" name="feedback">
      <button type="submit" class="button button-danger">Reject</button>
      % elif action == 'unpublish':
      <label for="unpublish-reason">Reason (optional)</label>
      <input type="text" id="unpublish-reason" name="feedback">
      <button type="submit" class="button button-danger">Unpublish</button>
      % elif action == 'submit':
      <button type="submit" class="button button-quiet">Back to review (pending)</button>
      % end
    </form>
  % end
  </div>
</section>

<div class="review-columns">
  <div class="review-main">
    <section>
      <h2>Preview <small>exactly as readers will see it · <a href="/admin/articles/{{aid}}/preview" target="_blank" rel="noopener">open in a new tab</a></small></h2>
      <iframe class="preview" src="/admin/articles/{{aid}}/preview" sandbox title="Reader preview of {{article['title']}}"></iframe>
    </section>

    <section id="edit">
      <h2>Edit by hand</h2>
      % if article['status'] == 'approved':
      <p class="admin-note">This article is live: saving updates it for readers at once (as a new revision).</p>
      % end
      <form method="post" action="/admin/articles/{{aid}}/edit" class="edit-form">
        <input type="hidden" name="csrf_token" value="{{csrf_token}}">
        <label for="title">Title</label>
        <input type="text" id="title" name="title" value="{{article['title']}}" required>
        <label for="tldr">TL;DR</label>
        <textarea id="tldr" name="tldr" rows="3">{{article['tldr']}}</textarea>
        <label for="type">Type</label>
        <select id="type" name="type">
          % for t in types:
          <option value="{{t}}" {{!'selected' if t == article['type'] else ''}}>{{t}}</option>
          % end
        </select>
        <label for="body_html">Body (HTML: p, h2–h4, lists, links, tables; anything else is removed)</label>
        <textarea id="body_html" name="body_html" rows="16">{{article['body_html']}}</textarea>
        <label for="key_details">Key details (one "Label: value" per line)</label>
        <textarea id="key_details" name="key_details" rows="5">{{key_details_text}}</textarea>
        <label for="persona_take">{{persona}}'s Take</label>
        <textarea id="persona_take" name="persona_take" rows="3">{{article['persona_take']}}</textarea>
        <label for="note">Note for the history (optional)</label>
        <input type="text" id="note" name="note" placeholder="edited by hand">
        <p><button type="submit" class="button">Save as a new revision</button></p>
      </form>
      <form method="post" action="/admin/articles/{{aid}}/edit" class="inline type-form">
        <input type="hidden" name="csrf_token" value="{{csrf_token}}">
        <input type="hidden" name="note" value="type set by hand">
        <label for="quick-type">Set type only</label>
        <select id="quick-type" name="type">
          % for t in types:
          <option value="{{t}}" {{!'selected' if t == article['type'] else ''}}>{{t}}</option>
          % end
        </select>
        <button type="submit" class="button button-quiet">Set type</button>
      </form>
    </section>

    <section id="revisions">
      <h2>Revision history</h2>
      <table class="admin-table">
        <thead><tr><th>#</th><th>By</th><th>When</th><th>Note</th><th>Critic</th><th></th></tr></thead>
        <tbody>
        % for r in reversed(revisions):
        <tr>
          <td>{{r['number']}}</td><td>{{r['author']}}</td><td>{{!display.time_tag(r['created_at'])}}</td><td>{{r['note']}}</td>
          <td>{{'—' if r['critic_score'] is None else '%g' % r['critic_score']}}</td>
          <td>
            % if r['number'] > 1:
            <a href="/admin/articles/{{aid}}?from={{r['number'] - 1}}&amp;to={{r['number']}}#diff">diff with {{r['number'] - 1}}</a>
            % end
          </td>
        </tr>
        % end
        </tbody>
      </table>
      % if diff_to:
      <div id="diff" class="diff">
        <h3>Changes from revision {{diff_from}} to {{diff_to}}</h3>
        % if not diff:
        <p class="meta">No differences in the text.</p>
        % end
        % for change in diff:
        <div class="diff-field">
          <h4>{{change['label']}}</h4>
          <p class="diff-text">{{!display.diff_html(change['segments'])}}</p>
        </div>
        % end
      </div>
      % end
    </section>

    <section id="events">
      <h2>Actions taken</h2>
      <table class="admin-table">
        <thead><tr><th>When</th><th>Who</th><th>Action</th><th>From → to</th><th>Feedback / note</th></tr></thead>
        <tbody>
        % for e in reversed(events):
        <tr><td>{{!display.time_tag(e['created_at'])}}</td><td>{{e['actor']}}</td><td>{{e['action']}}</td><td>{{e['from_status'] or ''}} → {{e['to_status'] or ''}}</td><td>{{e['feedback']}}</td></tr>
        % end
        % if not events:
        <tr><td colspan="5">No actions yet.</td></tr>
        % end
        </tbody>
      </table>
    </section>
  </div>

  <aside class="review-side">
    <section class="panel">
      <h2>Critic</h2>
      <p class="critic-score">{{'No score' if article['critic_score'] is None else '%g / 10' % article['critic_score']}}</p>
      % if article['critic_issues']:
      <ul>
        % for issue in article['critic_issues']:
        <li>{{issue}}</li>
        % end
      </ul>
      % else:
      <p class="meta">No issues listed.</p>
      % end
    </section>
    <section class="panel">
      <h2>Cards</h2>
      % if article['status'] == 'approved':
      <p class="meta">Linked now:</p>
      <ul class="plain">
        % for c in linked:
        <li><a href="/cards/{{c['slug']}}">{{c['name']}}</a></li>
        % end
      </ul>
      % if not linked:
      <p class="meta">None.</p>
      % end
      % else:
      <p class="meta">Approving links it to these cards and adds it to their Recent Changes:</p>
      <ul class="plain">
        % for c in cards:
        <li><a href="/cards/{{c['slug']}}">{{c['name']}}</a></li>
        % end
      </ul>
      % if not cards:
      <p class="meta">No card is mentioned.</p>
      % end
      % end
    </section>
    <section class="panel">
      <h2>Sources</h2>
      <ul class="plain">
        % for s in article['sources']:
        <li>{{!outside_link(s.get('url'), s.get('title'))}}{{' — ' + s['site'] if s.get('site') else ''}}</li>
        % end
      </ul>
      % if not article['sources']:
      <p class="meta">No sources recorded.</p>
      % end
    </section>
    <section class="panel">
      <h2>Key details</h2>
      % if article['key_details']:
      <dl class="details">
        % for label, value in article['key_details']:
        <dt>{{label}}</dt><dd>{{value}}</dd>
        % end
      </dl>
      % else:
      <p class="meta">None.</p>
      % end
    </section>
    <section class="panel">
      <h2>Image</h2>
      % chosen = image_src(article['image_thumb_url']) or image_src(article['image_url'])
      % if chosen:
      <img src="{{chosen}}" alt="{{article['image_alt']}}">
      % attr = article['image_attribution']
      <p class="meta">
        % include('image_credit', attr=attr)
      </p>
      % else:
      <p class="meta">No image (none scored above the floor, or no search ran).</p>
      % end
      % if article['image_candidates']:
      <h3>Candidates</h3>
      <ul class="candidates">
        % for c in (display.image_candidate(c, article) for c in article['image_candidates']):
        <li class="{{'chosen' if c['chosen'] else ''}}">
          % if c['thumb']:
          <img src="{{c['thumb']}}" alt="Candidate image{{': ' + c['title'] if c['title'] else ''}}" loading="lazy">
          % end
          <span>{{c['source']}} {{c['title']}}</span>
          <span class="meta">{{c['scores']}}</span>
        </li>
        % end
      </ul>
      % end
    </section>
    <section class="panel">
      <h2>Links</h2>
      <ul class="plain">
        % for link in article['links']:
        <li>{{!outside_link(link.get('url'), link.get('title'))}}</li>
        % end
      </ul>
    </section>
  </aside>
</div>
