% rebase('base')
<h1 class="page-heading">Credit card reference</h1>
<p class="lede">Fees, earning rates, transfer partners and {{persona}}'s verdict for each card, grouped by what it is best at. Each card shows the date its facts were last checked.</p>
<nav class="jump" aria-label="Categories">
  % for category, cards in groups:
  <a href="#{{category.lower()}}">{{category}} <span>({{len(cards)}})</span></a>
  % end
</nav>
% for category, cards in groups:
<section class="category" id="{{category.lower()}}" aria-labelledby="h-{{category.lower()}}">
  <h2 id="h-{{category.lower()}}">{{category}}</h2>
  <ul class="card-grid">
    % for card in cards:
    <li class="card-tile">
      <a href="/cards/{{card['slug']}}"><strong>{{card['name']}}</strong></a>
      <span class="fee">{{fee_label(card)}}</span>
      <span class="issuer">{{card['issuer']}}</span>
    </li>
    % end
  </ul>
</section>
% end
