% rebase('base')
<article class="card-page">
  <header class="article-header">
    <p class="meta"><a href="/cards#{{card['category'].lower()}}">{{card['category']}}</a> · {{card['issuer']}}{{'' if card['network'] in ('', card['issuer']) else ' · ' + card['network']}}</p>
    <h1>{{card['name']}}</h1>
    % if card['sources']:
    <p class="fee-line">{{fee_label(card)}} · Facts checked <time datetime="{{card['facts_checked']}}">{{format_date(card['facts_checked'])}}</time> against the sources listed below</p>
    % else:
    <p class="fee-line">{{fee_label(card)}} · Not yet re-checked against cited sources: confirm on the issuer's page</p>
    % end
  </header>
  <section class="verdict" aria-labelledby="verdict-heading">
    <h2 id="verdict-heading">{{persona}}'s Verdict</h2>
    <p>{{!linked(card['verdict'])}}</p>
  </section>
  <div class="sections">
    % for key, label in sections:
    <section class="card-section" id="{{key.replace('_', '-')}}" aria-labelledby="h-{{key}}">
      <h2 id="h-{{key}}">{{label}}</h2>
      <ul>
        % for point in card['sections'][key]:
        <li>{{!linked(point)}}</li>
        % end
      </ul>
      % if key == 'welcome_bonus':
      <p class="offer-note">Offers change, and issuers show different offers to different people: see the current one on {{!outside_link(card['official_url'], "the issuer's page")}}.</p>
      % elif key == 'annual_fee' and card['fee_tiers']:
      <p class="fee-tiers">{{', '.join(f"{t['name']}: {'no annual fee' if t['usd'] == 0 else '$' + str(t['usd'])}" for t in card['fee_tiers'])}}</p>
      % end
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
    % if card['sources']:
    <section class="card-section" id="sources" aria-labelledby="h-sources">
      <h2 id="h-sources">Sources</h2>
      <p>Every fact above was checked against these on <time datetime="{{card['facts_checked']}}">{{format_date(card['facts_checked'])}}</time>.</p>
      <ul>
        % for source in card['sources']:
        % url = safe_url(source['url'])
        <li>
          % if url:
          <a href="{{url}}" rel="nofollow noopener">{{source['title']}}</a>
          % else:
          {{source['title']}}
          % end
          — {{source['publisher']}}{{', ' + format_date(source['published']) if source.get('published') else ''}} (read <time datetime="{{source['read']}}">{{format_date(source['read'])}}</time>)
        </li>
        % end
      </ul>
    </section>
    % end
  </div>
  <p class="official">{{!outside_link(card['official_url'], "Issuer's page for the " + card['name'])}} — check current terms there before applying.</p>
</article>
