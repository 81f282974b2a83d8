% rebase('base')
<article class="card-page">
  <header class="article-header">
    <p class="meta"><a href="/cards#{{card['category'].lower()}}">{{card['category']}}</a> · {{card['issuer']}}{{'' if card['network'] == card['issuer'] else ' · ' + card['network']}}</p>
    <h1>{{card['name']}}</h1>
    <p class="fee-line">{{'No annual fee' if card['annual_fee_usd'] == 0 else '$' + str(card['annual_fee_usd']) + ' annual fee'}} · Facts checked <time datetime="{{card['facts_checked']}}">{{format_date(card['facts_checked'])}}</time></p>
  </header>
  <section class="verdict" aria-labelledby="verdict-heading">
    <h2 id="verdict-heading">{{persona}}'s Verdict</h2>
    <p>{{card['verdict']}}</p>
  </section>
  <div class="sections">
    % for key, label in sections:
    <section class="card-section" id="{{key.replace('_', '-')}}" aria-labelledby="h-{{key}}">
      <h2 id="h-{{key}}">{{label}}</h2>
      <ul>
        % for point in card['sections'][key]:
        <li>{{point}}</li>
        % end
      </ul>
    </section>
    % end
    <section class="card-section" id="recent-changes" aria-labelledby="h-recent">
      <h2 id="h-recent">Recent Changes</h2>
      % if changes:
      <ul>
        % for change in changes:
        <li><a href="/articles/{{change['slug']}}">{{change['title']}}</a> <time datetime="{{change['published_at']}}">{{format_date(change['published_at'])}}</time></li>
        % end
      </ul>
      % else:
      <p>No published news about this card yet.</p>
      % end
    </section>
  </div>
  <p class="official">{{!outside_link(card['official_url'], "Issuer's page for the " + card['name'])}} — check current terms there before applying.</p>
</article>
